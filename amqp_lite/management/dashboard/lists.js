// A list endpoint shown as a table, a page at a time, filtered by name on the broker
// (RabbitMQ's page, page_size and name parameters), as RabbitMQ's UI pages its lists.

import { page } from "./api.js";
import { button, clear, h, table } from "./ui.js";

const PAGE_SIZE = 100;

/** path(): the endpoint; columns as ui.table takes them, or render(items, emptyText). */
export function pagedList({ path, columns, render, emptyText, noun = "items", one = noun.replace(/s$/, "") }) {
  let number = 1;
  let name = "";
  const filter = h("input", {
    type: "search",
    class: "filter",
    placeholder: "Filter by name",
    "aria-label": `Filter ${noun} by name`,
  });
  const summary = h("span", { class: "muted" });
  const pager = h("span", { class: "pager" });
  const body = h("div");
  const element = h("div", { class: "list" }, h("div", { class: "list-bar" }, filter, summary, pager), body);
  let typing = 0;
  filter.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      name = filter.value;
      number = 1;
      refresh();
    }, 250);
  });

  async function refresh() {
    let answer;
    try {
      answer = await page(path(), { page: number, size: PAGE_SIZE, name });
    } catch (error) {
      if (error.status !== 400 || number === 1) throw error;
      number = 1; // the list shrank under the page shown
      answer = await page(path(), { page: number, size: PAGE_SIZE, name });
    }
    const filtered = answer.filtered_count !== answer.total_count;
    const word = answer.filtered_count === 1 ? one : noun;
    summary.textContent = `${answer.filtered_count} ${word}${filtered ? ` (of ${answer.total_count})` : ""}`;
    clear(
      pager,
      answer.page_count > 1
        ? [
            button("‹ Previous", () => {
              number = Math.max(1, number - 1);
              refresh();
            }, "small"),
            ` Page ${answer.page} of ${answer.page_count} `,
            button("Next ›", () => {
              number = Math.min(answer.page_count, number + 1);
              refresh();
            }, "small"),
          ]
        : null,
    );
    const text = name && answer.total_count ? `Nothing matches “${name}”.` : emptyText;
    clear(body, render ? render(answer.items, text) : table(columns, answer.items, text));
    return answer;
  }

  return { element, refresh };
}
