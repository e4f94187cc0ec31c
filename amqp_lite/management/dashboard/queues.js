// Queues: the list, adding one, and a queue's page: its figures, consumers, bindings,
// publishing to it, getting messages from it, purging and deleting it.

import { del, get, post, put } from "./api.js";
import { History, LineChart, rangeSelect } from "./chart.js";
import { bindingForm, publishForm } from "./forms.js";
import { pagedList } from "./lists.js";
import {
  QUEUE_ARGUMENTS,
  apiPath,
  argumentsText,
  attempt,
  badge,
  button,
  bytes,
  clear,
  count,
  empty,
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

const KNOWN_ARGUMENTS = {
  "x-message-ttl": ["TTL", "message TTL"],
  "x-expires": ["Exp", "auto-expire"],
  "x-max-length": ["Lim", "max length"],
  "x-max-length-bytes": ["Lim B", "max length in bytes"],
  "x-overflow": ["Ovfl", "overflow behaviour"],
  "x-dead-letter-exchange": ["DLX", "dead-letter exchange"],
  "x-dead-letter-routing-key": ["DLK", "dead-letter routing key"],
  "x-max-priority": ["Pri", "maximum priority"],
  "x-single-active-consumer": ["SAC", "single active consumer"],
  "x-queue-mode": ["Mode", "queue mode"],
};

export function features(queue) {
  const marks = [];
  if (queue.durable) marks.push(badge("D", "durable"));
  if (queue.auto_delete) marks.push(badge("AD", "auto-delete"));
  if (queue.exclusive) marks.push(badge("Excl", "exclusive to its connection"));
  for (const [key, value] of Object.entries(queue.arguments || {})) {
    const [label, text] = KNOWN_ARGUMENTS[key] || ["Args", key];
    marks.push(badge(label, `${text}: ${jsonText(value)}`, "arg"));
  }
  return h("span", { class: "badges" }, marks);
}

function vhostColumn(ctx) {
  return !ctx.vhost && ctx.session.vhosts.length > 1 ? [{ title: "Virtual host", value: (q) => q.vhost }] : [];
}

export function mountList(ctx) {
  const list = pagedList({
    path: () => (ctx.vhost ? apiPath("queues", ctx.vhost) : "/api/queues"),
    noun: "queues",
    emptyText: "No queues yet. Declare one below, or from a client.",
    columns: [
      ...vhostColumn(ctx),
      { title: "Name", value: (q) => link(pagePath("queues", q.vhost, q.name), q.name), className: "name" },
      { title: "Type", value: (q) => q.type },
      { title: "Features", value: features },
      { title: "Policy", value: (q) => q.policy || "" },
      { title: "Consumers", value: (q) => count(q.consumers), num: true },
      { title: "Ready", value: (q) => count(q.messages_ready), num: true },
      { title: "Unacked", value: (q) => count(q.messages_unacknowledged), num: true },
      { title: "Total", value: (q) => count(q.messages), num: true },
      { title: "Incoming", value: (q) => rate(rateOf(q.message_stats, "publish")), num: true, hint: "publish rate" },
      { title: "Deliver / get", value: (q) => rate(rateOf(q.message_stats, "deliver_get")), num: true },
      { title: "Ack", value: (q) => rate(rateOf(q.message_stats, "ack")), num: true },
    ],
  });
  ctx.root.append(h("h1", {}, "Queues"), list.element, fold("Add a new queue", false, addQueueForm(ctx, list.refresh)));
  return { refresh: list.refresh };
}

function addQueueForm(ctx, refresh) {
  const vhost = select("vhost", ctx.session.vhosts, ctx.vhost || ctx.session.vhosts[0]);
  const name = h("input", { name: "name", required: true, autocomplete: "off" });
  const durability = select("durable", [["true", "Durable"], ["false", "Transient"]], "true");
  const autoDelete = select("auto_delete", [["false", "No"], ["true", "Yes"]], "false");
  const args = keyValues(QUEUE_ARGUMENTS);
  const line = status();
  return h(
    "form",
    {
      class: "stacked",
      onsubmit: async (event) => {
        event.preventDefault();
        line.clear();
        await attempt(line, async () => {
          await put(apiPath("queues", vhost.value, name.value), {
            durable: durability.value === "true",
            auto_delete: autoDelete.value === "true",
            arguments: args.value(),
          });
          line.show(`Queue “${name.value}” declared.`);
          name.value = "";
          args.reset();
          await refresh();
        });
      },
    },
    h("div", { class: "inline" }, field("Virtual host", vhost), field("Name", name)),
    h("div", { class: "inline" }, field("Durability", durability), field("Auto delete", autoDelete)),
    field("Arguments", args),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Add queue")),
    line,
  );
}

export function mountDetail(ctx) {
  const [vhost, name] = ctx.params;
  const path = apiPath("queues", vhost, name);
  const queued = new History();
  const rates = new History();
  const queuedChart = new LineChart(
    "Queued messages",
    [{ label: "Ready" }, { label: "Unacked" }, { label: "Total" }],
    count,
    queued,
  );
  const rateChart = new LineChart(
    "Message rates",
    [{ label: "Publish" }, { label: "Deliver / get" }, { label: "Ack" }, { label: "Redelivered" }],
    rate,
    rates,
    "/s",
  );
  const overview = h("div");
  const consumers = h("div");
  const bindings = h("div");
  const exchangeNames = async () => (await get(`${apiPath("exchanges", vhost)}?columns=name`)).map((e) => e.name);

  ctx.root.append(
    h("p", { class: "crumbs" }, link("#/queues", "Queues"), " › ", vhost),
    h("h1", {}, "Queue ", h("span", { class: "object-name" }, name)),
    fold("Overview", true, overview, h("div", { class: "title-bar" }, h("span"), rangeSelect()), h("div", { class: "charts" }, queuedChart.element, rateChart.element)),
    fold("Consumers", true, consumers),
    fold(
      "Bindings",
      true,
      bindings,
      h("h3", {}, "Add binding to this queue"),
      bindingForm(vhost, { to: { type: "q", name }, exchanges: exchangeNames, onBound: () => ctx.refresh() }),
    ),
    fold("Publish message", false, publishForm(vhost, "", { fixedKey: name, onPublished: () => ctx.refresh() })),
    fold("Get messages", false, getMessagesForm(path, ctx)),
    fold("Delete or purge", false, dangerZone(ctx, path, name)),
  );

  return {
    dispose() {
      queuedChart.dispose();
      rateChart.dispose();
    },
    async refresh() {
      const [queue, bound] = await Promise.all([get(path), get(`${path}/bindings`)]);
      const stats = queue.message_stats || {};
      queued.add([queue.messages_ready, queue.messages_unacknowledged, queue.messages]);
      rates.add([rateOf(stats, "publish"), rateOf(stats, "deliver_get"), rateOf(stats, "ack"), rateOf(stats, "redeliver")]);
      clear(
        overview,
        h(
          "div",
          { class: "cards" },
          h("div", { class: "card" }, h("span", { class: "card-label" }, "Ready"), h("span", { class: "card-value", id: "queue-ready" }, count(queue.messages_ready))),
          h("div", { class: "card" }, h("span", { class: "card-label" }, "Unacked"), h("span", { class: "card-value" }, count(queue.messages_unacknowledged))),
          h("div", { class: "card" }, h("span", { class: "card-label" }, "Total"), h("span", { class: "card-value" }, count(queue.messages))),
          h("div", { class: "card" }, h("span", { class: "card-label" }, "Consumers"), h("span", { class: "card-value" }, count(queue.consumers))),
        ),
        facts([
          ["Virtual host", queue.vhost],
          ["Type", queue.type],
          ["Features", features(queue)],
          ["Policy", queue.policy || "none"],
          ["State", queue.state],
          ["Arguments", argumentsText(queue.arguments)],
          ["Message bytes", bytes(queue.message_bytes)],
          queue.owner_pid_details && ["Exclusive owner", queue.owner_pid_details.name],
        ]),
      );
      queuedChart.draw();
      rateChart.draw();
      clear(
        consumers,
        table(
          [
            { title: "Channel", value: (c) => c.channel_details.name },
            { title: "Consumer tag", value: (c) => c.consumer_tag },
            { title: "Ack required", value: (c) => (c.ack_required ? "●" : "○") },
            { title: "Exclusive", value: (c) => (c.exclusive ? "●" : "○") },
            { title: "Prefetch", value: (c) => count(c.prefetch_count), num: true },
            { title: "Arguments", value: (c) => argumentsText(c.arguments) },
          ],
          queue.consumer_details || [],
          "No consumers.",
        ),
      );
      clear(
        bindings,
        table(
          [
            {
              title: "From",
              value: (b) => (b.source === "" ? "(AMQP default)" : link(pagePath("exchanges", vhost, b.source), b.source)),
            },
            { title: "Routing key", value: (b) => h("code", {}, b.routing_key) },
            { title: "Arguments", value: (b) => argumentsText(b.arguments) },
            {
              title: "",
              value: (b) =>
                b.source === ""
                  ? h("span", { class: "muted", title: "Every queue is bound to the default exchange by its name." }, "implicit")
                  : button("Unbind", () => unbind(b, ctx), "small"),
            },
          ],
          bound,
          "No bindings.",
        ),
      );
    },
  };
}

export async function unbind(b, ctx) {
  const kind = b.destination_type === "queue" ? "q" : "e";
  await attempt(null, async () => {
    await del(apiPath("bindings", b.vhost, "e", exchangeSegment(b.source), kind, b.destination, b.properties_key));
    notify(`Unbound ${exchangeLabel(b.source)} → ${b.destination}.`);
    await ctx.refresh();
  });
}

function getMessagesForm(path, ctx) {
  const ackmode = select(
    "ackmode",
    [
      ["ack_requeue_true", "Nack message requeue true"],
      ["reject_requeue_true", "Reject requeue true"],
      ["ack_requeue_false", "Automatic ack"],
      ["reject_requeue_false", "Reject requeue false"],
    ],
    "ack_requeue_true",
  );
  const encoding = select("encoding", [["auto", "Automatic string/base64"], ["base64", "base64"]], "auto");
  const number = h("input", { name: "count", type: "number", min: 1, value: 1 });
  const results = h("div", { class: "messages" });
  const line = status();
  return h(
    "form",
    {
      class: "stacked",
      onsubmit: async (event) => {
        event.preventDefault();
        line.clear();
        await attempt(line, async () => {
          const messages = await post(`${path}/get`, {
            count: Number(number.value),
            ackmode: ackmode.value,
            encoding: encoding.value,
            truncate: 50000,
          });
          clear(results, messages.length ? messages.map(messageView) : empty("Queue is empty."));
          await ctx.refresh();
        });
      },
    },
    h("p", { class: "muted" }, "Getting messages is a destructive action: a requeued message comes back marked redelivered, at the head of the queue."),
    h("div", { class: "inline" }, field("Ack mode", ackmode), field("Encoding", encoding), field("Messages", number)),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Get message(s)")),
    line,
    results,
  );
}

function messageView(message, i) {
  return h(
    "article",
    { class: "message" },
    h("h3", {}, `Message ${i + 1}`),
    h("p", { class: "muted" }, `The server reported ${message.message_count} messages remaining.`),
    facts([
      ["Exchange", exchangeLabel(message.exchange)],
      ["Routing key", h("code", {}, message.routing_key)],
      ["Redelivered", message.redelivered ? "yes" : "no"],
      ["Properties", h("code", {}, jsonText(message.properties))],
      ["Payload", `${message.payload_bytes} bytes, encoding: ${message.payload_encoding}`],
    ]),
    h("pre", { class: "payload" }, message.payload),
  );
}

function dangerZone(ctx, path, name) {
  const line = status();
  return h(
    "div",
    {},
    h(
      "div",
      { class: "actions" },
      button("Purge messages", async () => {
        if (!confirm(`Purge every ready message of queue “${name}”?`)) return;
        await attempt(line, async () => {
          await del(`${path}/contents`);
          line.show("Queue purged.");
          await ctx.refresh();
        });
      }, "warn"),
      button("Delete queue", async () => {
        if (!confirm(`Delete queue “${name}”? Its messages go with it.`)) return;
        ctx.pause();
        await attempt(line, async () => {
          await del(path);
          notify(`Queue “${name}” deleted.`);
          ctx.go("#/queues");
        });
      }, "danger"),
    ),
    line,
  );
}
