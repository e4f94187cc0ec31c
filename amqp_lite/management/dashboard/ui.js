// Small DOM helpers. Everything the broker names (queues, users, keys) goes in as text, never
// as markup, so a queue called "<img onerror=...>" is only ever a queue name.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : String(child));
  }
}

function assign(element, props) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.setAttribute("class", value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name in element && typeof element[name] !== "function" && !(element instanceof SVGElement)) {
      element[name] = value;
    } else element.setAttribute(name, value === true ? "" : value);
  }
}

/** h("a", {href: "#/"}, "text", child...) */
export function h(tag, props, ...children) {
  const element = document.createElement(tag);
  assign(element, props);
  append(element, children);
  return element;
}

export function s(tag, props, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  assign(element, props);
  append(element, children);
  return element;
}

export function clear(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

// -- formatting ------------------------------------------------------------------------------

const integer = new Intl.NumberFormat("en");
const decimal = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });

export const count = (n) => (n === undefined || n === null ? "–" : integer.format(n));
export const rate = (r) => (r === undefined || r === null ? "–" : `${decimal.format(r)}/s`);

export function bytes(n) {
  if (n === undefined || n === null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${i ? decimal.format(n) : n} ${units[i]}`;
}

export function duration(ms) {
  const seconds = Math.floor(ms / 1000);
  const d = Math.floor(seconds / 86400);
  const hms = [Math.floor((seconds % 86400) / 3600), Math.floor((seconds % 3600) / 60), seconds % 60];
  const [hh, mm, ss] = hms;
  if (d) return `${d}d ${hh}h`;
  if (hh) return `${hh}h ${mm}m`;
  if (mm) return `${mm}m ${ss}s`;
  return `${ss}s`;
}

export const rateOf = (stats, name) => stats?.[`${name}_details`]?.rate ?? 0;

/** The default exchange has no name; RabbitMQ's UI calls it "(AMQP default)". */
export const exchangeLabel = (name) => (name === "" ? "(AMQP default)" : name);

/** A path segment for an exchange: "" is amq.default in the API's paths. */
export const exchangeSegment = (name) => (name === "" ? "amq.default" : name);

export const apiPath = (...segments) => "/api/" + segments.map(encodeURIComponent).join("/");
export const pagePath = (...segments) => "#/" + segments.map(encodeURIComponent).join("/");

/** Arguments as name=value pairs; none at all is an empty cell, not "{}". */
export function argumentsText(args) {
  const entries = Object.entries(args || {});
  if (!entries.length) return "";
  return h("span", { class: "args" }, entries.map(([k, v]) => h("code", {}, `${k}=${jsonText(v)}`)));
}

export function jsonText(value) {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

// -- building blocks -------------------------------------------------------------------------

export function section(title, ...content) {
  return h("section", { class: "panel" }, h("h2", {}, title), ...content);
}

/** A collapsible section, open unless told otherwise. */
export function fold(title, open, ...content) {
  return h("details", { class: "panel fold", open }, h("summary", {}, h("h2", {}, title)), ...content);
}

export function empty(text) {
  return h("p", { class: "empty" }, text);
}

/**
 * A table: columns are {title, value(row) -> text or node, num?: bool, key?: sort key}.
 * An empty list shows `emptyText` instead of an empty grid.
 */
export function table(columns, rows, emptyText = "Nothing here yet.") {
  if (!rows.length) return empty(emptyText);
  const head = h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : null, title: c.hint }, c.title)));
  const body = rows.map((row) =>
    h(
      "tr",
      {},
      columns.map((c) => h("td", { class: c.num ? "num" : c.className || null }, c.value(row))),
    ),
  );
  return h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, head), h("tbody", {}, body)));
}

/** A two-column list of facts: [[label, value], ...]. */
export function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.filter(Boolean).map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]),
  );
}

export function badge(text, title, kind = "") {
  return h("abbr", { class: `badge ${kind}`.trim(), title }, text);
}

export function link(href, ...children) {
  return h("a", { href }, ...children);
}

/** A labelled control; a group of controls (key/value rows) is labelled as a group. */
export function field(label, control, hint) {
  const single = control instanceof HTMLInputElement || control instanceof HTMLSelectElement || control instanceof HTMLTextAreaElement;
  const box = single
    ? h("label", {}, h("span", { class: "label" }, label), control)
    : h("div", { role: "group", "aria-label": label }, h("span", { class: "label" }, label), control);
  return h("div", { class: "field" }, box, hint ? h("small", {}, hint) : null);
}

export function select(name, options, value) {
  const control = h("select", { name });
  for (const option of options) {
    const [optionValue, text] = Array.isArray(option) ? option : [option, option];
    control.append(h("option", { value: optionValue, selected: optionValue === value }, text));
  }
  return control;
}

export function button(text, onclick, kind = "") {
  return h("button", { type: "button", class: kind || null, onclick }, text);
}

// -- messages to the user ----------------------------------------------------------------------

let toastTimer = 0;

export function notify(text, kind = "ok") {
  const toast = document.getElementById("toast");
  clear(toast, h("div", { class: `toast ${kind}` }, text));
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => toast.replaceChildren(), 5000);
}

/** A form's status line: shows what an action did, or why it failed. */
export function status() {
  const line = h("p", { class: "status", role: "status" });
  line.show = (text, kind = "ok") => clear(line, h("span", { class: kind }, text));
  line.clear = () => line.replaceChildren();
  return line;
}

/** Run an action from a button or form, showing its failure instead of throwing. */
export async function attempt(line, action) {
  try {
    return await action();
  } catch (error) {
    (line ? line.show : notify)(error.message || String(error), "error");
    return undefined;
  }
}

// -- arguments, headers and policy definitions ---------------------------------------------------

const TYPES = [
  ["string", "String"],
  ["number", "Number"],
  ["boolean", "Boolean"],
  ["list", "List"],
];

function typedValue(text, type) {
  if (type === "number") {
    const number = Number(text);
    if (text.trim() === "" || Number.isNaN(number)) throw new Error(`"${text}" is not a number`);
    return number;
  }
  if (type === "boolean") {
    if (text !== "true" && text !== "false") throw new Error(`"${text}" is not true or false`);
    return text === "true";
  }
  if (type === "list") return text.split(",").map((item) => item.trim()).filter(Boolean);
  return text;
}

/**
 * Rows of name / value / type, as RabbitMQ's forms have them, with quick links that add a
 * known key (suggestions: [[key, type, label], ...]). `.value()` is the object they make.
 */
export function keyValues(suggestions = [], { nameLabel = "argument" } = {}) {
  const rows = h("div", { class: "kv-rows" });
  const addRow = (key = "", type = "string") => {
    const row = h(
      "div",
      { class: "kv-row" },
      h("input", { class: "kv-key", placeholder: nameLabel, value: key, "aria-label": nameLabel }),
      h("span", { class: "kv-eq" }, "="),
      h("input", { class: "kv-value", placeholder: "value", "aria-label": `${nameLabel} value` }),
      Object.assign(select("type", TYPES, type), { title: "type of the value" }),
      button("×", () => {
        row.remove();
        if (!rows.children.length) addRow();
      }, "icon"),
    );
    const last = rows.lastElementChild;
    if (last && !last.querySelector(".kv-key").value && !last.querySelector(".kv-value").value) last.remove();
    rows.append(row);
    if (key) row.querySelector(".kv-value").focus();
    return row;
  };
  addRow();
  rows.addEventListener("input", () => {
    const last = rows.lastElementChild;
    if (last && last.querySelector(".kv-key").value) addRow();
  });
  const quick = suggestions.length
    ? h(
        "p",
        { class: "quick" },
        "Add ",
        suggestions.map(([key, type, label], i) => [
          i ? " · " : "",
          h("button", { type: "button", class: "linkish", title: key, onclick: () => addRow(key, type) }, label),
        ]),
      )
    : null;
  const element = h("div", { class: "kv" }, rows, quick);
  element.value = () => {
    const value = {};
    for (const row of rows.children) {
      const key = row.querySelector(".kv-key").value.trim();
      if (!key) continue;
      value[key] = typedValue(row.querySelector(".kv-value").value, row.querySelector("select").value);
    }
    return value;
  };
  element.reset = () => {
    rows.replaceChildren();
    addRow();
  };
  element.set = (object) => {
    rows.replaceChildren();
    for (const [key, v] of Object.entries(object || {})) {
      const type = Array.isArray(v) ? "list" : typeof v === "number" ? "number" : typeof v === "boolean" ? "boolean" : "string";
      const row = addRow(key, type);
      row.querySelector(".kv-value").value = Array.isArray(v) ? v.join(", ") : String(v);
    }
    addRow();
  };
  return element;
}

export const QUEUE_ARGUMENTS = [
  ["x-message-ttl", "number", "Message TTL"],
  ["x-expires", "number", "Auto expire"],
  ["x-max-length", "number", "Max length"],
  ["x-max-length-bytes", "number", "Max length bytes"],
  ["x-overflow", "string", "Overflow behaviour"],
  ["x-dead-letter-exchange", "string", "Dead letter exchange"],
  ["x-dead-letter-routing-key", "string", "Dead letter routing key"],
  ["x-single-active-consumer", "boolean", "Single active consumer"],
  ["x-max-priority", "number", "Maximum priority"],
  ["x-queue-mode", "string", "Lazy mode"],
];

export const EXCHANGE_ARGUMENTS = [["alternate-exchange", "string", "Alternate exchange"]];
