// Exchanges: the list, adding one, and an exchange's page: its bindings both ways, adding a
// binding, publishing a message and deleting it.

import { del, get, put } from "./api.js";
import { History, LineChart, rangeSelect } from "./chart.js";
import { bindingForm, publishForm } from "./forms.js";
import { pagedList } from "./lists.js";
import { unbind } from "./queues.js";
import {
  EXCHANGE_ARGUMENTS,
  apiPath,
  argumentsText,
  attempt,
  badge,
  button,
  clear,
  exchangeLabel,
  exchangeSegment,
  facts,
  field,
  fold,
  h,
  jsonText,
  keyValues,
  link,
  notify,
  pagePath,
  rate,
  rateOf,
  select,
  status,
  table,
} from "./ui.js";

const TYPES = ["direct", "fanout", "headers", "topic", "x-consistent-hash", "x-delayed-message"];

export function features(exchange) {
  const marks = [];
  if (exchange.durable) marks.push(badge("D", "durable"));
  if (exchange.auto_delete) marks.push(badge("AD", "auto-delete"));
  if (exchange.internal) marks.push(badge("I", "internal: clients cannot publish to it"));
  for (const [key, value] of Object.entries(exchange.arguments || {})) {
    const label = key === "alternate-exchange" ? "AE" : key === "x-delayed-type" ? "Delayed" : "Args";
    marks.push(badge(label, `${key}: ${jsonText(value)}`, "arg"));
  }
  return h("span", { class: "badges" }, marks);
}

const exchangeLink = (vhost, name) => link(pagePath("exchanges", vhost, exchangeSegment(name)), exchangeLabel(name));

export function mountList(ctx) {
  const list = pagedList({
    path: () => (ctx.vhost ? apiPath("exchanges", ctx.vhost) : "/api/exchanges"),
    noun: "exchanges",
    emptyText: "No exchanges.",
    columns: [
      ...(!ctx.vhost && ctx.session.vhosts.length > 1 ? [{ title: "Virtual host", value: (e) => e.vhost }] : []),
      { title: "Name", value: (e) => exchangeLink(e.vhost, e.name), className: "name" },
      { title: "Type", value: (e) => e.type },
      { title: "Features", value: features },
      { title: "Policy", value: (e) => e.policy || "" },
      { title: "Message rate in", value: (e) => rate(rateOf(e.message_stats, "publish_in")), num: true },
      { title: "Message rate out", value: (e) => rate(rateOf(e.message_stats, "publish_out")), num: true },
    ],
  });
  ctx.root.append(h("h1", {}, "Exchanges"), list.element, fold("Add a new exchange", false, addExchangeForm(ctx, list.refresh)));
  return { refresh: list.refresh };
}

function addExchangeForm(ctx, refresh) {
  const vhost = select("vhost", ctx.session.vhosts, ctx.vhost || ctx.session.vhosts[0]);
  const name = h("input", { name: "name", required: true, autocomplete: "off" });
  const type = select("type", TYPES, "direct");
  const durability = select("durable", [["true", "Durable"], ["false", "Transient"]], "true");
  const autoDelete = select("auto_delete", [["false", "No"], ["true", "Yes"]], "false");
  const internal = select("internal", [["false", "No"], ["true", "Yes"]], "false");
  const args = keyValues([...EXCHANGE_ARGUMENTS, ["x-delayed-type", "string", "Delayed type"]]);
  const line = status();
  return h(
    "form",
    {
      class: "stacked",
      onsubmit: async (event) => {
        event.preventDefault();
        line.clear();
        await attempt(line, async () => {
          await put(apiPath("exchanges", vhost.value, name.value), {
            type: type.value,
            durable: durability.value === "true",
            auto_delete: autoDelete.value === "true",
            internal: internal.value === "true",
            arguments: args.value(),
          });
          line.show(`Exchange “${name.value}” declared.`);
          name.value = "";
          args.reset();
          await refresh();
        });
      },
    },
    h("div", { class: "inline" }, field("Virtual host", vhost), field("Name", name), field("Type", type)),
    h("div", { class: "inline" }, field("Durability", durability), field("Auto delete", autoDelete), field("Internal", internal)),
    field("Arguments", args),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Add exchange")),
    line,
  );
}

export function mountDetail(ctx) {
  const [vhost, segment] = ctx.params;
  const name = segment === "amq.default" ? "" : segment;
  const path = apiPath("exchanges", vhost, segment);
  const rates = new History();
  const chart = new LineChart("Message rates", [{ label: "In" }, { label: "Out" }], rate, rates, "/s");
  const overview = h("div");
  const outgoing = h("div");
  const incoming = h("div");
  const builtin = name === "" || name.startsWith("amq.");
  const exchangeNames = async () => (await get(`${apiPath("exchanges", vhost)}?columns=name`)).map((e) => e.name);

  ctx.root.append(
    h("p", { class: "crumbs" }, link("#/exchanges", "Exchanges"), " › ", vhost),
    h("h1", {}, "Exchange ", h("span", { class: "object-name" }, exchangeLabel(name))),
    fold("Overview", true, overview, h("div", { class: "title-bar" }, h("span"), rangeSelect()), h("div", { class: "charts" }, chart.element)),
    fold(
      "Bindings",
      true,
      h("h3", {}, "From this exchange"),
      outgoing,
      h("h3", {}, "To this exchange"),
      incoming,
      name === ""
        ? null
        : [h("h3", {}, "Add binding from this exchange"), bindingForm(vhost, { from: name, exchanges: exchangeNames, onBound: () => ctx.refresh() })],
    ),
    fold(
      "Publish message",
      false,
      h(
        "p",
        { class: "muted" },
        "To see where a message would go, and why, without sending it: ",
        link(pagePath("topology", vhost, segment), "explain routing from this exchange"),
        ".",
      ),
      publishForm(vhost, name, { onPublished: () => ctx.refresh() }),
    ),
    builtin ? null : fold("Delete this exchange", false, deleteButton(ctx, path, name)),
  );

  const bindingColumns = (side) => [
    side === "to"
      ? {
          title: "To",
          value: (b) =>
            b.destination_type === "queue"
              ? link(pagePath("queues", vhost, b.destination), b.destination)
              : exchangeLink(vhost, b.destination),
        }
      : { title: "From", value: (b) => exchangeLink(vhost, b.source) },
    side === "to" ? { title: "Kind", value: (b) => b.destination_type } : null,
    { title: "Routing key", value: (b) => h("code", {}, b.routing_key) },
    { title: "Arguments", value: (b) => argumentsText(b.arguments) },
    { title: "", value: (b) => button("Unbind", () => unbind(b, ctx), "small") },
  ].filter(Boolean);

  return {
    dispose: () => chart.dispose(),
    async refresh() {
      const [exchange, from, to] = await Promise.all([
        get(path),
        get(`${path}/bindings/source`),
        get(`${path}/bindings/destination`),
      ]);
      rates.add([rateOf(exchange.message_stats, "publish_in"), rateOf(exchange.message_stats, "publish_out")]);
      chart.draw();
      clear(
        overview,
        facts([
          ["Virtual host", exchange.vhost],
          ["Type", exchange.type],
          ["Features", features(exchange)],
          ["Policy", exchange.policy || "none"],
          ["Arguments", argumentsText(exchange.arguments)],
        ]),
      );
      clear(
        outgoing,
        name === ""
          ? h("p", { class: "muted" }, "The default exchange is bound to every queue, with the queue's name as the routing key.")
          : table(bindingColumns("to"), from, "No bindings from this exchange."),
      );
      clear(incoming, table(bindingColumns("from"), to, "No bindings to this exchange."));
    },
  };
}

function deleteButton(ctx, path, name) {
  const line = status();
  return h(
    "div",
    {},
    h(
      "div",
      { class: "actions" },
      button("Delete exchange", async () => {
        if (!confirm(`Delete exchange “${name}”? Its bindings go with it.`)) return;
        ctx.pause();
        await attempt(line, async () => {
          await del(path);
          notify(`Exchange “${name}” deleted.`);
          ctx.go("#/exchanges");
        });
      }, "danger"),
    ),
    line,
  );
}
