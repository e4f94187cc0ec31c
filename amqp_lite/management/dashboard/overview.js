// Overview: totals, live charts of queued messages and message rates, the node and its ports.

import { get } from "./api.js";
import { History, LineChart, rangeSelect } from "./chart.js";
import { bytes, clear, count, duration, facts, fold, h, rate, rateOf, table } from "./ui.js";

// Kept while the page is open, so the charts survive a visit to another tab.
const queued = new History();
const rates = new History();

const QUEUED = [
  { label: "Ready", hint: "messages waiting to be delivered", value: (o) => o.queue_totals.messages_ready },
  { label: "Unacked", hint: "delivered, not yet acknowledged", value: (o) => o.queue_totals.messages_unacknowledged },
  { label: "Total", hint: "ready + unacked", value: (o) => o.queue_totals.messages },
];

const both = (m, a, b) => rateOf(m, a) + rateOf(m, b);
const RATES = [
  { label: "Publish", hint: "messages published", value: (m) => rateOf(m, "publish") },
  { label: "Publisher confirm", hint: "confirms sent to publishers", value: (m) => rateOf(m, "confirm") },
  { label: "Deliver (manual ack)", value: (m) => rateOf(m, "deliver") },
  { label: "Deliver (auto ack)", value: (m) => rateOf(m, "deliver_no_ack") },
  { label: "Consumer ack", value: (m) => rateOf(m, "ack") },
  { label: "Redelivered", value: (m) => rateOf(m, "redeliver") },
  { label: "Get", hint: "basic.get, manual and auto ack", value: (m) => both(m, "get", "get_no_ack") },
  { label: "Unroutable", hint: "returned (mandatory) or dropped", value: (m) => both(m, "return_unroutable", "drop_unroutable") },
];

export function mount(ctx) {
  const totals = h("div", { class: "cards" });
  const queuedChart = new LineChart("Queued messages", QUEUED, count, queued);
  const rateChart = new LineChart("Message rates", RATES, rate, rates, "/s");
  const node = h("div");
  const ports = h("div");
  ctx.root.append(
    h("div", { class: "title-bar" }, h("h1", {}, "Overview"), rangeSelect()),
    totals,
    h("div", { class: "charts" }, queuedChart.element, rateChart.element),
    fold("Node", true, node),
    fold("Ports and listeners", false, ports),
  );
  return {
    dispose() {
      queuedChart.dispose();
      rateChart.dispose();
    },
    async refresh() {
      const [o, nodes] = await Promise.all([get("/api/overview"), ctx.session.isMonitor ? get("/api/nodes") : null]);
      const stats = o.message_stats || {};
      queued.add(QUEUED.map((serie) => serie.value(o)));
      rates.add(RATES.map((serie) => serie.value(stats)));
      queuedChart.draw();
      rateChart.draw();
      const t = o.object_totals;
      clear(
        totals,
        card("Connections", count(t.connections), "#/connections"),
        card("Channels", count(t.channels), "#/channels"),
        card("Exchanges", count(t.exchanges), "#/exchanges"),
        card("Queues", count(t.queues), "#/queues"),
        card("Consumers", count(t.consumers)),
        card("Messages", count(o.queue_totals.messages), null, `${count(o.queue_totals.messages_ready)} ready · ${count(o.queue_totals.messages_unacknowledged)} unacked`),
        card("Publish", rate(rateOf(stats, "publish")), null, `${count(stats.publish)} in all`),
        card("Deliver / get", rate(rateOf(stats, "deliver_get")), null, `${count(stats.deliver_get)} in all`),
      );
      const me = nodes?.[0];
      clear(
        node,
        facts([
          ["Name", o.node],
          ["Product", `${o.product_name} ${o.product_version}`],
          ["Speaks as", `RabbitMQ ${o.rabbitmq_version}`],
          ["Runtime", o.erlang_full_version],
          me && ["Uptime", duration(me.uptime)],
          me && ["Memory used", bytes(me.mem_used)],
          me && ["File descriptors", `${count(me.fd_used)} of ${count(me.fd_total)}`],
          me && ["Disk free", bytes(me.disk_free)],
        ]),
      );
      clear(
        ports,
        table(
          [
            { title: "Protocol", value: (l) => l.protocol },
            { title: "Bound to", value: (l) => l.ip_address },
            { title: "Port", value: (l) => String(l.port), num: true },
          ],
          o.listeners,
          "No listeners.",
        ),
      );
    },
  };
}

function card(label, value, href, detail) {
  const body = [h("span", { class: "card-label" }, label), h("span", { class: "card-value" }, value), detail ? h("span", { class: "card-detail" }, detail) : null];
  return href ? h("a", { class: "card", href }, body) : h("div", { class: "card" }, body);
}


