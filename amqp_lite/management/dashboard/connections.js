// Connections and channels: who is connected and doing what; closing a connection.

import { del, get } from "./api.js";
import { pagedList } from "./lists.js";
import {
  apiPath,
  attempt,
  badge,
  button,
  bytes,
  clear,
  count,
  facts,
  field,
  fold,
  h,
  jsonText,
  link,
  notify,
  pagePath,
  rate,
  rateOf,
  status,
  table,
} from "./ui.js";

const client = (c) => {
  const p = c.client_properties || {};
  return [p.product, p.version].filter(Boolean).join(" ") || "";
};

const since = (ms) => new Date(ms).toLocaleString("en-GB");

function byVhost(ctx, all, one) {
  return () => (ctx.vhost ? apiPath("vhosts", ctx.vhost, one) : all);
}

export function mountList(ctx) {
  const list = pagedList({
    path: byVhost(ctx, "/api/connections", "connections"),
    noun: "connections",
    emptyText: "No connections. Clients that connect to the AMQP port appear here.",
    columns: [
      ...(!ctx.vhost && ctx.session.vhosts.length > 1 ? [{ title: "Virtual host", value: (c) => c.vhost }] : []),
      {
        title: "Name",
        value: (c) => [
          link(pagePath("connections", c.name), c.name),
          c.user_provided_name ? h("div", { class: "muted" }, c.user_provided_name) : null,
        ],
        className: "name",
      },
      { title: "User", value: (c) => c.user },
      { title: "State", value: (c) => c.state },
      { title: "Client", value: client },
      { title: "Protocol", value: (c) => c.protocol },
      { title: "Channels", value: (c) => count(c.channels), num: true },
      { title: "From client", value: (c) => `${bytes(Math.round(rateOf(c, "recv_oct")))}/s`, num: true },
      { title: "To client", value: (c) => `${bytes(Math.round(rateOf(c, "send_oct")))}/s`, num: true },
    ],
  });
  ctx.root.append(h("h1", {}, "Connections"), list.element);
  return { refresh: list.refresh };
}

export function mountDetail(ctx) {
  const [name] = ctx.params;
  const path = apiPath("connections", name);
  const overview = h("div");
  const channels = h("div");
  const properties = h("div");
  ctx.root.append(
    h("p", { class: "crumbs" }, link("#/connections", "Connections")),
    h("h1", {}, "Connection ", h("span", { class: "object-name" }, name)),
    h("p", { class: "muted", id: "connection-name" }),
    fold("Overview", true, overview),
    fold("Channels", true, channels),
    fold("Client properties", false, properties),
    fold("Close this connection", true, closeForm(ctx, path, name)),
  );
  return {
    async refresh() {
      const [c, open] = await Promise.all([get(path), get(`${path}/channels`)]);
      document.getElementById("connection-name").textContent = c.user_provided_name ? `Named by the client: ${c.user_provided_name}` : "";
      clear(
        overview,
        facts([
          ["User", c.user],
          ["Virtual host", c.vhost],
          ["State", c.state],
          ["Client", client(c)],
          ["From", `${c.peer_host}:${c.peer_port}`],
          ["Protocol", c.protocol],
          ["Authentication", c.auth_mechanism],
          ["Heartbeat", `${c.timeout} s`],
          ["Frame max", `${count(c.frame_max)} bytes`],
          ["Channel max", count(c.channel_max)],
          ["Connected at", since(c.connected_at)],
          ["Received", `${bytes(c.recv_oct)} (${bytes(Math.round(rateOf(c, "recv_oct")))}/s)`],
          ["Sent", `${bytes(c.send_oct)} (${bytes(Math.round(rateOf(c, "send_oct")))}/s)`],
        ]),
      );
      clear(channels, channelTable(ctx, open, false));
      clear(
        properties,
        facts(Object.entries(c.client_properties || {}).map(([key, value]) => [key, h("code", {}, jsonText(value))])),
      );
    },
  };
}

function closeForm(ctx, path, name) {
  const reason = h("input", { name: "reason", value: "Closed via management plugin", size: 40 });
  const line = status();
  return h(
    "form",
    {
      class: "stacked",
      onsubmit: async (event) => {
        event.preventDefault();
        if (!confirm(`Close connection “${name}”? The client is told: ${reason.value}`)) return;
        ctx.pause();
        await attempt(line, async () => {
          await del(path, { "X-Reason": reason.value });
          notify(`Connection “${name}” closed.`);
          ctx.go("#/connections");
        });
      },
    },
    h("p", { class: "muted" }, "The client gets connection.close with 320 CONNECTION_FORCED and this reason."),
    field("Reason", reason),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "danger" }, "Force close")),
    line,
  );
}

function mode(channel) {
  return h(
    "span",
    { class: "badges" },
    channel.confirm ? badge("C", "confirm mode") : null,
    channel.transactional ? badge("T", "transactional") : null,
  );
}

function channelTable(ctx, channels, withConnection, emptyText = "No channels open.") {
  return table(
    [
      {
        title: "Channel",
        value: (c) => (withConnection ? link(pagePath("connections", c.connection_details.name), c.name) : c.name),
        className: "name",
      },
      ...(withConnection && !ctx.vhost && ctx.session.vhosts.length > 1 ? [{ title: "Virtual host", value: (c) => c.vhost }] : []),
      { title: "User", value: (c) => c.user },
      { title: "Mode", value: mode, hint: "C: confirm, T: transactional" },
      { title: "State", value: (c) => c.state },
      { title: "Consumers", value: (c) => count(c.consumer_count), num: true },
      { title: "Prefetch", value: (c) => count(c.prefetch_count), num: true },
      { title: "Unacked", value: (c) => count(c.messages_unacknowledged), num: true },
      { title: "Publish", value: (c) => rate(rateOf(c.message_stats, "publish")), num: true },
      { title: "Confirm", value: (c) => rate(rateOf(c.message_stats, "confirm")), num: true },
      { title: "Deliver / get", value: (c) => rate(rateOf(c.message_stats, "deliver_get")), num: true },
      { title: "Ack", value: (c) => rate(rateOf(c.message_stats, "ack")), num: true },
    ],
    channels,
    emptyText,
  );
}

export function mountChannels(ctx) {
  const list = pagedList({
    path: byVhost(ctx, "/api/channels", "channels"),
    noun: "channels",
    emptyText: "No channels open.",
    render: (items, emptyText) => channelTable(ctx, items, true, emptyText),
  });
  ctx.root.append(h("h1", {}, "Channels"), list.element);
  return { refresh: list.refresh };
}
