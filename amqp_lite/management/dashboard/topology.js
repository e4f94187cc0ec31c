// A vhost's topology as an SVG picture: exchanges and queues in columns, left to right in the
// direction messages flow; bindings with their keys; alternate-exchange and dead-letter links.
// With an explanation (a route trace) the path a message takes is highlighted, binding by binding.

import { exchangeLabel, h, s } from "./ui.js";

const W = 210; // node width
const H = 46; // node height
const GAP = 170; // between columns: room for a binding's key
const ROW = H + 26;
const PAD = 24;
const LANE = 12; // between backward links (dead letters) running side by side
const LABEL_CHARS = 22;
const MAX_TEXT = 26;

const bindingId = (source, destinationType, destination, propertiesKey) =>
  `b|${source}|${destinationType}|${destination}|${propertiesKey}`;

function clip(text, max = MAX_TEXT) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function bindingLabel(binding, sourceType) {
  if (sourceType === "fanout") return "";
  if (sourceType === "headers" || Object.keys(binding.arguments || {}).length) {
    const args = Object.entries(binding.arguments || {}).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(",") : v}`);
    return [binding.routing_key && sourceType !== "headers" ? binding.routing_key : null, ...args].filter(Boolean).join(" ");
  }
  if (sourceType === "x-consistent-hash") return `weight ${binding.routing_key}`;
  return binding.routing_key === "" ? "(empty key)" : binding.routing_key;
}

/** Which exchanges, queues and links to draw, given what the user asked to see. */
function choose(topology, { showBuiltin, trace }) {
  const exchanges = new Map(topology.exchanges.map((e) => [e.name, e]));
  const queues = new Map(topology.queues.map((q) => [q.name, q]));
  const visited = new Set(trace ? trace.hops.map((hop) => hop.exchange) : []);
  const matchedDefault = new Set();
  for (const hop of trace ? trace.hops : []) {
    for (const trial of hop.trials) {
      for (const b of trial.bindings) if (b.matched && b.source === "") matchedDefault.add(b.destination);
    }
  }
  const explicit = topology.bindings.filter((b) => b.source !== "");
  const linked = new Set();
  for (const b of explicit) {
    linked.add(b.source);
    if (b.destination_type === "exchange") linked.add(b.destination);
  }
  for (const e of topology.exchanges) if (e.alternate_exchange) linked.add(e.alternate_exchange);
  for (const q of topology.queues) if (q.dead_letter_exchange !== null && q.dead_letter_exchange !== undefined) linked.add(q.dead_letter_exchange);

  const shown = (name) => {
    const e = exchanges.get(name);
    if (!e) return false;
    return !e.builtin || showBuiltin || visited.has(name) || linked.has(name);
  };
  const nodes = new Map();
  for (const e of topology.exchanges) {
    if (shown(e.name)) nodes.set(`e:${e.name}`, { id: `e:${e.name}`, kind: "exchange", name: e.name, data: e });
  }
  for (const q of topology.queues) nodes.set(`q:${q.name}`, { id: `q:${q.name}`, kind: "queue", name: q.name, data: q });
  const ghost = (name, why) => {
    const id = `e:${name}`;
    if (!nodes.has(id)) nodes.set(id, { id, kind: "missing", name, data: { name, type: why } });
    return id;
  };

  const edges = [];
  const sourceType = (name) => exchanges.get(name)?.type || "direct";
  for (const b of topology.bindings) {
    const from = `e:${b.source}`;
    const to = `${b.destination_type === "queue" ? "q" : "e"}:${b.destination}`;
    if (!nodes.has(from) || !nodes.has(to)) continue;
    if (b.source === "" && !showBuiltin && !matchedDefault.has(b.destination)) continue;
    edges.push({
      id: bindingId(b.source, b.destination_type, b.destination, b.properties_key),
      kind: "binding",
      from,
      to,
      label: bindingLabel(b, sourceType(b.source)),
      title: `binding ${exchangeLabel(b.source)} → ${b.destination}\nrouting key: ${JSON.stringify(b.routing_key)}${
        Object.keys(b.arguments || {}).length ? `\narguments: ${JSON.stringify(b.arguments)}` : ""
      }`,
    });
  }
  for (const e of topology.exchanges) {
    const from = `e:${e.name}`;
    if (!e.alternate_exchange || !nodes.has(from)) continue;
    const to = exchanges.has(e.alternate_exchange) ? `e:${e.alternate_exchange}` : ghost(e.alternate_exchange, "does not exist");
    if (!nodes.has(to)) continue;
    edges.push({
      id: `ae|${e.name}`,
      kind: "alternate",
      from,
      to,
      label: "alternate",
      title: `alternate exchange of ${exchangeLabel(e.name)}: what none of its bindings match goes to ${exchangeLabel(e.alternate_exchange)}`,
    });
  }
  for (const q of topology.queues) {
    if (q.dead_letter_exchange === null || q.dead_letter_exchange === undefined) continue;
    const target = q.dead_letter_exchange;
    const to = exchanges.has(target) ? `e:${target}` : ghost(target, "does not exist");
    if (!nodes.has(to)) continue;
    const key = q.dead_letter_routing_key;
    edges.push({
      id: `dlx|${q.name}`,
      kind: "dead-letter",
      from: `q:${q.name}`,
      to,
      label: key ? `dead letters, key ${key}` : "dead letters",
      title: `dead-letter exchange of queue ${q.name}: ${exchangeLabel(target)}${key ? `, routing key ${key}` : ", with each message's own routing key"}`,
      backward: true,
    });
  }
  return { nodes, edges };
}

/** Columns by longest path along bindings and alternate links; backward links are ignored. */
function rank(nodes, edges) {
  const out = new Map([...nodes.keys()].map((id) => [id, []]));
  for (const edge of edges) if (!edge.backward) out.get(edge.from).push(edge);
  const state = new Map();
  const order = [];
  const visit = (id) => {
    state.set(id, "visiting");
    for (const edge of out.get(id)) {
      const next = state.get(edge.to);
      if (next === "visiting") edge.backward = true; // a cycle: draw this link as going back
      else if (next === undefined) visit(edge.to);
    }
    state.set(id, "done");
    order.push(id);
  };
  const ids = [...nodes.keys()].sort();
  for (const id of ids) if (!state.has(id) && nodes.get(id).kind !== "queue") visit(id);
  for (const id of ids) if (!state.has(id)) visit(id);
  order.reverse();
  const ranks = new Map(ids.map((id) => [id, 0]));
  for (const id of order) {
    for (const edge of out.get(id)) {
      if (!edge.backward) ranks.set(edge.to, Math.max(ranks.get(edge.to), ranks.get(id) + 1));
    }
  }
  // A queue nothing is bound to sits with the other queues, not among the exchanges.
  const bound = new Set(edges.filter((e) => !e.backward).map((e) => e.to));
  const queueColumn = Math.max(0, ...ids.filter((id) => nodes.get(id).kind === "queue" && bound.has(id)).map((id) => ranks.get(id)));
  const anyExchange = ids.some((id) => nodes.get(id).kind !== "queue");
  for (const id of ids) {
    if (nodes.get(id).kind === "queue" && !bound.has(id)) ranks.set(id, Math.max(queueColumn, anyExchange ? 1 : 0));
  }
  return ranks;
}

/** Order each column by where its neighbours are, to uncross the links (barycentres). */
function order(nodes, edges, ranks) {
  const columns = [];
  for (const [id, r] of [...ranks.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
    (columns[r] ||= []).push(id);
  }
  for (let i = 0; i < columns.length; i += 1) columns[i] ||= [];
  const position = new Map();
  const place = () => columns.forEach((column) => column.forEach((id, i) => position.set(id, i)));
  place();
  const forward = edges.filter((e) => !e.backward);
  const neighbours = (id, side) =>
    forward.filter((e) => (side === "in" ? e.to === id : e.from === id)).map((e) => position.get(side === "in" ? e.from : e.to));
  const sortBy = (column, side) => {
    const weight = new Map(
      column.map((id) => {
        const near = neighbours(id, side);
        return [id, near.length ? near.reduce((a, b) => a + b, 0) / near.length : position.get(id)];
      }),
    );
    column.sort((a, b) => weight.get(a) - weight.get(b) || a.localeCompare(b));
  };
  for (let pass = 0; pass < 4; pass += 1) {
    for (let i = 1; i < columns.length; i += 1) {
      sortBy(columns[i], "in");
      place();
    }
    for (let i = columns.length - 2; i >= 0; i -= 1) {
      sortBy(columns[i], "out");
      place();
    }
  }
  return columns;
}

function bezier(x1, y1, x2, y2) {
  const dx = Math.max((x2 - x1) / 2, 40);
  const p = [x1, x1 + dx, x2 - dx, x2];
  const q = [y1, y1, y2, y2];
  const at = (v, t) => (1 - t) ** 3 * v[0] + 3 * (1 - t) ** 2 * t * v[1] + 3 * (1 - t) * t ** 2 * v[2] + t ** 3 * v[3];
  return {
    d: `M${x1},${y1} C${p[1]},${q[1]} ${p[2]},${q[2]} ${x2},${y2}`,
    // The curve's height where it crosses x (x grows with t along these curves).
    yAt(x) {
      let low = 0;
      let high = 1;
      for (let i = 0; i < 30; i += 1) {
        const mid = (low + high) / 2;
        if (at(p, mid) < x) low = mid;
        else high = mid;
      }
      return at(q, (low + high) / 2);
    },
  };
}

/** A path through points, its corners rounded. */
function rounded(points, radius = 10) {
  let d = `M${points[0].x},${points[0].y}`;
  for (let i = 1; i < points.length - 1; i += 1) {
    const [p, c, n] = [points[i - 1], points[i], points[i + 1]];
    const d1 = Math.hypot(c.x - p.x, c.y - p.y) || 1;
    const d2 = Math.hypot(n.x - c.x, n.y - c.y) || 1;
    const r = Math.min(radius, d1 / 2, d2 / 2);
    const a = { x: c.x + ((p.x - c.x) / d1) * r, y: c.y + ((p.y - c.y) / d1) * r };
    const b = { x: c.x + ((n.x - c.x) / d2) * r, y: c.y + ((n.y - c.y) / d2) * r };
    d += ` L${a.x},${a.y} Q${c.x},${c.y} ${b.x},${b.y}`;
  }
  const last = points[points.length - 1];
  return `${d} L${last.x},${last.y}`;
}

/**
 * The picture. `trace` (the explain endpoint's answer) highlights its path; `onFocus(id)`
 * is how the explanation's rows find their link.
 */
export function drawTopology(topology, { showBuiltin = false, trace = null } = {}) {
  const { nodes, edges } = choose(topology, { showBuiltin, trace });
  if (!nodes.size) return null;
  const ranks = rank(nodes, edges);
  const columns = order(nodes, edges, ranks);
  const tallest = Math.max(...columns.map((c) => c.length));
  const loops = edges.filter((e) => e.backward);
  // Backward links (dead letters, cycles) leave their source to the right, run below
  // everything and come up the gap left of their target, each in a lane of its own: room for
  // them on both sides and at the bottom.
  const margin = loops.length ? 16 + loops.length * LANE : 0;
  const left = PAD + margin;
  const at = new Map();
  columns.forEach((column, c) => {
    const offset = ((tallest - column.length) * ROW) / 2;
    column.forEach((id, i) => at.set(id, { x: left + c * (W + GAP), y: PAD + offset + i * ROW }));
  });
  const bottom = PAD + tallest * ROW - (ROW - H);
  const width = left + margin + PAD + columns.length * W + (columns.length - 1) * GAP;
  const height = bottom + PAD + (loops.length ? 18 + loops.length * LANE : 0);

  // A key sits where it is unambiguous: by its target when that has no other labelled link
  // coming in, else by its source when that has no other going out, else half-way.
  const forward = edges.filter((e) => !e.backward && e.label);
  const tally = (side) => forward.reduce((m, e) => m.set(e[side], (m.get(e[side]) || 0) + 1), new Map());
  const incoming = tally("to");
  const outgoing = tally("from");

  const path = highlight(trace);
  const state = (id, fallback) => (trace ? path.get(id) || fallback : "");
  const edgeViews = edges.map((edge) => {
    const a = at.get(edge.from);
    const b = at.get(edge.to);
    const chars = edge.backward ? LABEL_CHARS + 12 : LABEL_CHARS;
    const width = labelWidth(edge.label, chars);
    let d;
    let spot;
    if (edge.backward) {
      const lane = loops.indexOf(edge);
      const low = bottom + 18 + lane * LANE;
      const out = a.x + W + 12 + lane * LANE;
      const back = b.x - 12 - lane * LANE;
      const sy = a.y + H - 10;
      const ty = b.y + H - 10;
      d = rounded([
        { x: a.x + W, y: sy },
        { x: out, y: sy },
        { x: out, y: low },
        { x: back, y: low },
        { x: back, y: ty },
        { x: b.x, y: ty },
      ]);
      spot = { x: (out + back) / 2, y: low };
    } else {
      const x1 = a.x + W;
      const x2 = b.x;
      const curve = bezier(x1, a.y + H / 2, x2, b.y + H / 2);
      d = curve.d;
      const x =
        incoming.get(edge.to) === 1
          ? x2 - 12 - width / 2
          : outgoing.get(edge.from) === 1
            ? x1 + 12 + width / 2
            : (x1 + x2) / 2;
      spot = { x, y: curve.yAt(x) };
    }
    const mark = state(edge.id, "dim");
    const label = edge.label
      ? s(
          "g",
          { class: "edge-label" },
          s("rect", { x: spot.x - width / 2, y: spot.y - 9, width, height: 18, rx: 4 }),
          s("text", { x: spot.x, y: spot.y + 4, "text-anchor": "middle" }, clip(edge.label, chars)),
        )
      : null;
    return s(
      "g",
      { class: `edge ${edge.kind} ${mark}`.trim(), "data-id": edge.id },
      s("title", {}, edge.title),
      s("path", { class: "hit", d }),
      s("path", { class: "stroke", d, "marker-end": `url(#arrow-${mark.startsWith("on") ? "on" : edge.kind})` }),
      label,
    );
  });
  const hopNumbers = new Map();
  (trace?.hops || []).forEach((hop, i) => {
    const id = `e:${hop.exchange}`;
    hopNumbers.set(id, [...(hopNumbers.get(id) || []), i + 1]);
  });
  const nodeViews = [...nodes.values()].map((node) => {
    const { x, y } = at.get(node.id);
    const mark = state(node.id, "dim");
    const name = node.kind === "queue" ? node.name : exchangeLabel(node.name);
    const sub =
      node.kind === "queue"
        ? queueSummary(node.data)
        : node.kind === "missing"
          ? "exchange does not exist"
          : `${node.data.type} exchange${node.data.internal ? " · internal" : ""}`;
    const steps = hopNumbers.get(node.id);
    return s(
      "g",
      { class: `node ${node.kind} ${mark}`.trim(), "data-id": node.id, transform: `translate(${x},${y})` },
      s("title", {}, `${node.kind === "queue" ? "queue" : "exchange"} ${name}\n${sub}`),
      s("rect", { width: W, height: H, rx: node.kind === "queue" ? 4 : 14 }),
      s("text", { class: "node-name", x: 12, y: 19 }, clip(name)),
      s("text", { class: "node-sub", x: 12, y: 36 }, clip(sub, 32)),
      steps
        ? s(
            "g",
            { class: "step", transform: `translate(${W - 4},-4)` },
            s("circle", { r: 11 }),
            s("text", { y: 4, "text-anchor": "middle" }, steps.join(",")),
          )
        : null,
    );
  });
  const marker = (kind) =>
    s(
      "marker",
      {
        id: `arrow-${kind}`,
        class: `arrow ${kind}`,
        viewBox: "0 0 10 10",
        refX: 9,
        refY: 5,
        markerWidth: 9,
        markerHeight: 9,
        markerUnits: "userSpaceOnUse",
        orient: "auto-start-reverse",
      },
      s("path", { d: "M0,0 L10,5 L0,10 z" }),
    );
  return s(
    "svg",
    { class: `topology${trace ? " traced" : ""}`, width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `Topology of virtual host ${topology.vhost}` },
    s("defs", {}, marker("binding"), marker("alternate"), marker("dead-letter"), marker("on")),
    s("g", { class: "edges" }, edgeViews),
    s("g", { class: "nodes" }, nodeViews),
  );
}

function queueSummary(q) {
  const parts = [q.type === "classic" ? null : q.type, `${q.messages_ready} ready`];
  if (q.messages_unacknowledged) parts.push(`${q.messages_unacknowledged} unacked`);
  if (q.consumers) parts.push(`${q.consumers} consumer${q.consumers > 1 ? "s" : ""}`);
  return parts.filter(Boolean).join(" · ");
}

function labelWidth(text, chars) {
  return Math.min(text.length, chars) * 6.7 + 12;
}

/** id -> "on" | "miss" | "final" for everything the trace touched. */
function highlight(trace) {
  const marks = new Map();
  if (!trace) return marks;
  for (const hop of trace.hops) {
    marks.set(`e:${hop.exchange}`, "on");
    for (const trial of hop.trials) {
      for (const b of trial.bindings) {
        const id = bindingId(b.source, b.destination_type, b.destination, b.properties_key);
        if (b.matched) marks.set(id, "on");
        else if (!marks.has(id)) marks.set(id, "miss");
      }
    }
    for (const handoff of hop.handoffs) {
      if (handoff.alternate) marks.set(`ae|${hop.exchange}`, handoff.outcome === "missing" ? "miss" : "on");
    }
  }
  for (const queue of trace.queues) marks.set(`q:${queue}`, "on final");
  return marks;
}

export function legend() {
  const item = (cls, text) => h("li", {}, h("span", { class: `key ${cls}` }), text);
  return h(
    "ul",
    { class: "topology-legend" },
    item("k-exchange", "exchange"),
    item("k-queue", "queue"),
    item("k-binding", "binding, with its key"),
    item("k-alternate", "alternate exchange"),
    item("k-dead-letter", "dead-letter exchange"),
    item("k-on", "path taken"),
    item("k-miss", "binding tried, did not match"),
  );
}
