// Topology, for learners: a live picture of a vhost's exchanges, bindings and queues, and a form
// that asks the broker's explainer where a message would go (or publishes it too), then shows
// the path on the picture and the reasons, binding by binding.

import { get, post } from "./api.js";
import { legend, drawTopology } from "./topology.js";
import {
  apiPath,
  attempt,
  button,
  clear,
  empty,
  exchangeLabel,
  exchangeSegment,
  field,
  h,
  keyValues,
  pagePath,
  section,
  select,
  status,
} from "./ui.js";

const BUILTIN_KEY = "amqp-lite.show-builtin";
const quote = (text) => `'${text}'`;

export function mount(ctx) {
  const vhosts = ctx.session.vhosts;
  const vhost = ctx.params[0] ?? (ctx.vhost || (vhosts.includes("/") ? "/" : vhosts[0]));
  const wanted = ctx.params[1] === "amq.default" ? "" : ctx.params[1];
  if (vhost === undefined) {
    ctx.root.append(h("h1", {}, "Topology"), empty("You have access to no virtual host."));
    return { refresh: async () => {} };
  }
  let topology = null;
  let trace = null;

  const vhostChoice = select("vhost", vhosts, vhost);
  vhostChoice.addEventListener("change", () => ctx.go(pagePath("topology", vhostChoice.value)));
  const builtin = h("input", { type: "checkbox", name: "builtin", checked: sessionStorage.getItem(BUILTIN_KEY) === "true" });
  builtin.addEventListener("change", () => {
    sessionStorage.setItem(BUILTIN_KEY, String(builtin.checked));
    draw();
  });
  const picture = h("div", { class: "topology-scroll" });
  const clearButton = button("Clear highlight", () => {
    trace = null;
    clear(result);
    draw();
  }, "small");
  clearButton.hidden = true;

  // -- the question --------------------------------------------------------------------------
  const exchange = h("select", { name: "exchange" });
  const routingKey = h("input", { name: "routing_key", autocomplete: "off", placeholder: "e.g. order.created.eu" });
  const headers = keyValues(
    [
      ["CC", "list", "CC"],
      ["BCC", "list", "BCC"],
      ["x-delay", "number", "x-delay"],
    ],
    { nameLabel: "header" },
  );
  const payload = h("textarea", { name: "payload", rows: 2, placeholder: "body, for a real publish" });
  const line = status();
  const result = h("div", { class: "explanation" });

  async function ask(publish) {
    line.clear();
    clear(result);
    trace = null;
    draw();
    await attempt(line, async () => {
      const given = headers.value();
      const segment = exchangeSegment(exchange.value);
      trace = await post(apiPath("amqp-lite", "explain", vhost, segment), {
        routing_key: routingKey.value,
        headers: given,
      });
      let published = null;
      if (publish) {
        const properties = Object.keys(given).length ? { headers: given } : {};
        published = await post(apiPath("exchanges", vhost, segment, "publish"), {
          properties,
          routing_key: routingKey.value,
          payload: payload.value,
          payload_encoding: "string",
        });
      }
      draw();
      clear(result, explanation(trace, published));
      clearButton.hidden = false;
      await ctx.refresh();
    });
  }

  const form = h(
    "form",
    {
      class: "stacked explain-form",
      onsubmit: (event) => {
        event.preventDefault();
        ask(event.submitter?.value === "publish");
      },
    },
    h("div", { class: "inline" }, field("Exchange", exchange), field("Routing key", routingKey)),
    field("Headers", headers, "CC and BCC are lists of extra routing keys; x-delay holds a message on a delayed-message exchange."),
    field("Payload", payload),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "primary", value: "explain", name: "explain" }, "Explain"),
      h("button", { type: "submit", value: "publish", name: "publish" }, "Publish and explain"),
      clearButton,
    ),
    line,
  );

  ctx.root.append(
    h("h1", {}, "Topology"),
    h(
      "div",
      { class: "list-bar" },
      field("Virtual host", vhostChoice),
      h("label", { class: "check" }, builtin, " Show the built-in exchanges (amq.*, the default exchange)"),
    ),
    h(
      "p",
      { class: "muted intro" },
      "Messages flow from left to right: a publisher sends to an exchange, the exchange's bindings pick the queues (or further exchanges) that get a copy. ",
      "An alternate exchange takes what no binding matches; a dead-letter exchange takes what a queue rejects, expires or overflows.",
    ),
    legend(),
    picture,
    section("Where would a message go?", h("p", { class: "muted" }, "Explain asks the broker's own routing, without sending anything; publish and explain sends the message too."), form, result),
  );

  function draw() {
    if (!topology) return;
    const svg = drawTopology(topology, { showBuiltin: builtin.checked, trace });
    clear(picture, svg || empty("Nothing in this virtual host yet."));
  }

  function fillExchanges() {
    const names = topology.exchanges.map((e) => e.name);
    const own = topology.exchanges.find((e) => !e.builtin);
    const current = exchange.options.length ? exchange.value : wanted ?? (own ? own.name : "");
    const signature = names.join("\n");
    if (exchange.dataset.signature === signature) return;
    exchange.dataset.signature = signature;
    exchange.replaceChildren(
      ...topology.exchanges.map((e) => h("option", { value: e.name, selected: e.name === current }, `${exchangeLabel(e.name)} · ${e.type}`)),
    );
  }

  return {
    async refresh() {
      topology = await get(apiPath("amqp-lite", "topology", vhost));
      fillExchanges();
      draw();
    },
  };
}

// -- the explanation, in words ------------------------------------------------------------------

function arrival(hop) {
  const r = hop.reached;
  if (r.how === "published") return "published to";
  if (r.how === "alternate") return `alternate exchange of ${quote(r.via)}`;
  const keys = r.binding_keys.map(quote).join(", ");
  return `bound from ${quote(r.via)}${keys ? ` with key ${keys}` : ""}`;
}

const keyText = (key) => `${key.origin === "routing key" ? "routing key" : `${key.origin} key`} ${quote(key.key)}`;

function focus(id, on) {
  const target = document.querySelector(`.topology [data-id="${CSS.escape(id)}"]`);
  target?.classList.toggle("focus", on);
}

function verdictRow(b) {
  const id = `b|${b.source}|${b.destination_type}|${b.destination}|${b.properties_key}`;
  return h(
    "li",
    {
      class: b.matched ? "yes" : "no",
      onmouseenter: () => focus(id, true),
      onmouseleave: () => focus(id, false),
    },
    h("span", { class: "mark", "aria-label": b.matched ? "matched" : "did not match" }, b.matched ? "✓" : "✗"),
    h("span", {}, `${b.destination_type} `, h("strong", {}, b.destination), ": ", b.reason),
  );
}

function hopView(hop, index) {
  const parts = [h("h3", {}, `${index + 1}. `, h("span", {}, hop.exchange === "" ? "the default exchange" : `exchange ${quote(hop.exchange)}`), ` (${hop.type}): ${arrival(hop)}`)];
  if (hop.held_ms) {
    parts.push(h("p", {}, `Holds the message for ${hop.held_ms} ms (its x-delay) and routes nothing until then; afterwards its bindings route it:`));
  }
  for (const trial of hop.trials) {
    parts.push(
      h("p", { class: "trial-key" }, keyText(trial.key)),
      trial.bindings.length ? h("ul", { class: "verdicts" }, trial.bindings.map(verdictRow)) : h("p", { class: "muted" }, "no bindings"),
    );
  }
  if (hop.untried_keys.length) {
    parts.push(h("p", { class: "muted" }, `Not looked at by a ${hop.type} exchange: ${hop.untried_keys.map(keyText).join(", ")}.`));
  }
  for (const handoff of hop.handoffs) {
    const name = quote(handoff.destination);
    if (handoff.alternate) {
      const how = {
        visited: "it goes there",
        "already visited": "it was already there: nothing more",
        missing: "which does not exist: the message is dropped there",
      }[handoff.outcome];
      parts.push(h("p", { class: "alternate" }, `No binding matched: falling back to alternate exchange ${name}; ${how || handoff.outcome}.`));
    } else if (handoff.outcome === "already queued") {
      parts.push(h("p", { class: "muted" }, `Queue ${name} already has a copy: it gets only one.`));
    } else if (handoff.outcome === "already visited") {
      parts.push(h("p", { class: "muted" }, `Exchange ${name} was already visited: a message passes each exchange once.`));
    } else if (handoff.outcome === "missing") {
      parts.push(h("p", { class: "warn" }, `${handoff.destination_type} ${name} does not exist.`));
    }
  }
  return h("li", { class: "hop" }, parts);
}

function explanation(trace, published) {
  const routed = trace.queues.length;
  const summary = routed
    ? h("p", { class: "verdict ok", id: "explain-summary" }, `Reaches ${routed === 1 ? "queue" : "queues"} `, trace.queues.map((q, i) => [i ? ", " : "", h("strong", { class: "reached" }, q)]), ".")
    : h("p", { class: "verdict warn", id: "explain-summary" }, "Unroutable: the message is dropped (returned to the publisher if mandatory).");
  let publishLine = null;
  if (published) {
    const agrees = published.routed === trace.routed;
    publishLine = h(
      "p",
      { class: agrees ? "ok" : "warn", id: "publish-outcome" },
      published.routed ? "Published: the broker routed it." : "Published, but not routed.",
      agrees ? "" : " (The topology changed between the explanation and the publish.)",
    );
  }
  return [
    summary,
    publishLine,
    h("ol", { class: "hops" }, trace.hops.map(hopView)),
    h("details", { class: "as-text" }, h("summary", {}, "As text (the same as amqp-lite explain prints)"), h("pre", {}, trace.text)),
  ];
}
