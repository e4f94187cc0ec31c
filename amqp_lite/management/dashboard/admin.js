// Admin: users and their permissions, virtual hosts, policies. What a user may see here follows
// its tags, as in RabbitMQ: administrators everything, policymakers the policies.

import { del, get, put } from "./api.js";
import { pagedList } from "./lists.js";
import {
  apiPath,
  attempt,
  badge,
  button,
  clear,
  count,
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

const TAGS = ["administrator", "monitoring", "policymaker", "management", "impersonator"];

function subnav(ctx, current) {
  const items = ctx.session.isAdmin
    ? [["users", "Users"], ["vhosts", "Virtual hosts"], ["policies", "Policies"]]
    : [["policies", "Policies"]];
  return h(
    "nav",
    { class: "subnav" },
    items.map(([tab, label]) => h("a", { href: `#/${tab}`, "aria-current": tab === current ? "page" : null }, label)),
  );
}

function tagBadges(tags) {
  return h("span", { class: "badges" }, (Array.isArray(tags) ? tags : []).map((t) => badge(t, `tag ${t}`, "tag")));
}

function permissionsInputs() {
  const inputs = ["configure", "write", "read"].map((kind) => h("input", { name: kind, value: ".*", class: "short" }));
  return {
    fields: inputs.map((input) => field(`${input.name[0].toUpperCase()}${input.name.slice(1)} regexp`, input)),
    value: () => Object.fromEntries(inputs.map((input) => [input.name, input.value])),
  };
}

function permissionTable(rows, first, onClear) {
  return table(
    [
      first,
      { title: "Configure", value: (p) => h("code", {}, p.configure) },
      { title: "Write", value: (p) => h("code", {}, p.write) },
      { title: "Read", value: (p) => h("code", {}, p.read) },
      { title: "", value: (p) => button("Clear", () => onClear(p), "small") },
    ],
    rows,
    "No permissions.",
  );
}

async function clearPermission(p, ctx) {
  await attempt(null, async () => {
    await del(apiPath("permissions", p.vhost, p.user));
    notify(`Cleared ${p.user}'s permissions in ${p.vhost}.`);
    await ctx.refresh();
  });
}

// -- users -------------------------------------------------------------------------------------

export function mountUsers(ctx) {
  let access = new Map();
  const list = pagedList({
    path: () => "/api/users",
    noun: "users",
    emptyText: "No users.",
    columns: [
      { title: "Name", value: (u) => link(pagePath("users", u.name), u.name), className: "name" },
      { title: "Tags", value: (u) => tagBadges(u.tags) },
      { title: "Can access virtual hosts", value: (u) => (access.get(u.name) || []).join(", ") || h("span", { class: "muted" }, "No access") },
      { title: "Has password", value: (u) => (u.password_hash ? "●" : "○") },
    ],
  });
  ctx.root.append(h("h1", {}, "Admin"), subnav(ctx, "users"), list.element, fold("Add a user", true, userForm(ctx, null, list.refresh)));
  return {
    async refresh() {
      const permissions = await get("/api/permissions");
      access = new Map();
      for (const p of permissions) access.set(p.user, [...(access.get(p.user) || []), p.vhost]);
      await list.refresh();
    },
  };
}

function tagsInput(initial) {
  const input = h("input", { name: "tags", value: initial, placeholder: "comma-separated", size: 30 });
  const quick = h(
    "p",
    { class: "quick" },
    "Set ",
    TAGS.map((tag, i) => [
      i ? " · " : "",
      h("button", {
        type: "button",
        class: "linkish",
        onclick: () => {
          const tags = input.value.split(",").map((t) => t.trim()).filter(Boolean);
          input.value = tags.includes(tag) ? tags.filter((t) => t !== tag).join(", ") : [...tags, tag].join(", ");
        },
      }, tag),
    ]),
  );
  return { input, element: h("div", {}, input, quick) };
}

function userForm(ctx, user, refresh) {
  const name = h("input", { name: "username", required: true, autocomplete: "off" });
  const password = h("input", { name: "password", type: "password", autocomplete: "new-password", required: !user });
  const tags = tagsInput(user ? user.tags.join(", ") : "");
  const line = status();
  return h(
    "form",
    {
      class: "stacked",
      onsubmit: async (event) => {
        event.preventDefault();
        line.clear();
        const target = user ? user.name : name.value;
        await attempt(line, async () => {
          const body = { tags: tags.input.value };
          if (password.value) body.password = password.value;
          await put(apiPath("users", target), body);
          line.show(user ? "User updated." : `User “${target}” added.`);
          password.value = "";
          if (!user) name.value = "";
          await refresh();
        });
      },
    },
    user ? null : field("Username", name),
    field(user ? "New password" : "Password", password, user ? "Leave empty to keep the password." : null),
    field("Tags", tags.element),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, user ? "Update user" : "Add user")),
    line,
  );
}

export function mountUser(ctx) {
  const [name] = ctx.params;
  const overview = h("div");
  const permissions = h("div");
  const update = h("div");
  const perm = permissionsInputs();
  const vhost = select("vhost", ctx.session.vhosts, ctx.session.vhosts[0]);
  const line = status();
  const setForm = h(
    "form",
    {
      class: "stacked",
      onsubmit: async (event) => {
        event.preventDefault();
        await attempt(line, async () => {
          await put(apiPath("permissions", vhost.value, name), perm.value());
          line.show(`Permissions set in ${vhost.value}.`);
          await ctx.refresh();
        });
      },
    },
    h("div", { class: "inline" }, field("Virtual host", vhost), perm.fields),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Set permission")),
    line,
  );
  ctx.root.append(
    h("p", { class: "crumbs" }, link("#/users", "Users")),
    h("h1", {}, "User ", h("span", { class: "object-name" }, name)),
    fold("Overview", true, overview),
    fold("Permissions", true, permissions, h("h3", {}, "Set permission"), setForm),
    fold("Update this user", false, update),
    fold("Delete this user", false, deleteUser(ctx, name)),
  );
  let drawnUpdate = false;
  return {
    async refresh() {
      const [user, granted] = await Promise.all([get(apiPath("users", name)), get(apiPath("users", name, "permissions"))]);
      clear(overview, facts([["Tags", tagBadges(user.tags)], ["Hashing", user.hashing_algorithm], ["Can log in with a password", user.password_hash ? "yes" : "no"]]));
      clear(
        permissions,
        permissionTable(granted, { title: "Virtual host", value: (p) => link(pagePath("vhosts", p.vhost), p.vhost) }, (p) => clearPermission(p, ctx)),
      );
      if (!drawnUpdate) {
        clear(update, userForm(ctx, user, ctx.refresh));
        drawnUpdate = true;
      }
    },
  };
}

function deleteUser(ctx, name) {
  const line = status();
  return h(
    "div",
    {},
    button("Delete user", async () => {
      if (!confirm(`Delete user “${name}”?`)) return;
      ctx.pause();
      await attempt(line, async () => {
        await del(apiPath("users", name));
        notify(`User “${name}” deleted.`);
        ctx.go("#/users");
      });
    }, "danger"),
    line,
  );
}

// -- virtual hosts -----------------------------------------------------------------------------------

export function mountVhosts(ctx) {
  const list = pagedList({
    path: () => "/api/vhosts",
    noun: "virtual hosts",
    emptyText: "No virtual hosts.",
    columns: [
      { title: "Name", value: (v) => link(pagePath("vhosts", v.name), v.name), className: "name" },
      { title: "Description", value: (v) => v.description || "" },
      { title: "Tags", value: (v) => tagBadges(v.tags) },
      { title: "Ready", value: (v) => count(v.messages_ready), num: true },
      { title: "Unacked", value: (v) => count(v.messages_unacknowledged), num: true },
      { title: "Total", value: (v) => count(v.messages), num: true },
      { title: "Publish", value: (v) => rate(rateOf(v.message_stats, "publish")), num: true },
      { title: "Deliver / get", value: (v) => rate(rateOf(v.message_stats, "deliver_get")), num: true },
    ],
  });
  ctx.root.append(h("h1", {}, "Admin"), subnav(ctx, "vhosts"), list.element, fold("Add a new virtual host", true, vhostForm(ctx, list.refresh)));
  return { refresh: list.refresh };
}

function vhostForm(ctx, refresh) {
  const name = h("input", { name: "name", required: true, autocomplete: "off" });
  const description = h("input", { name: "description", size: 40 });
  const tags = h("input", { name: "tags", placeholder: "comma-separated" });
  const line = status();
  return h(
    "form",
    {
      class: "stacked",
      onsubmit: async (event) => {
        event.preventDefault();
        line.clear();
        await attempt(line, async () => {
          await put(apiPath("vhosts", name.value), { description: description.value, tags: tags.value });
          line.show(`Virtual host “${name.value}” added.`);
          name.value = description.value = tags.value = "";
          await ctx.reloadVhosts();
          await refresh();
        });
      },
    },
    h("div", { class: "inline" }, field("Name", name), field("Description", description), field("Tags", tags)),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Add virtual host")),
    line,
  );
}

export function mountVhost(ctx) {
  const [name] = ctx.params;
  const overview = h("div");
  const permissions = h("div");
  const perm = permissionsInputs();
  const user = h("select", { name: "user" });
  const line = status();
  const setForm = h(
    "form",
    {
      class: "stacked",
      onsubmit: async (event) => {
        event.preventDefault();
        await attempt(line, async () => {
          await put(apiPath("permissions", name, user.value), perm.value());
          line.show(`Permissions set for ${user.value}.`);
          await ctx.refresh();
        });
      },
    },
    h("div", { class: "inline" }, field("User", user), perm.fields),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Set permission")),
    line,
  );
  const deleteLine = status();
  ctx.root.append(
    h("p", { class: "crumbs" }, link("#/vhosts", "Virtual hosts")),
    h("h1", {}, "Virtual host ", h("span", { class: "object-name" }, name)),
    fold("Overview", true, overview),
    fold("Permissions", true, permissions, h("h3", {}, "Set permission"), setForm),
    fold(
      "Delete this virtual host",
      false,
      button("Delete virtual host", async () => {
        if (!confirm(`Delete virtual host “${name}” and everything in it?`)) return;
        ctx.pause();
        await attempt(deleteLine, async () => {
          await del(apiPath("vhosts", name));
          notify(`Virtual host “${name}” deleted.`);
          await ctx.reloadVhosts();
          ctx.go("#/vhosts");
        });
      }, "danger"),
      deleteLine,
    ),
  );
  let usersLoaded = false;
  return {
    async refresh() {
      const [vhost, granted] = await Promise.all([get(apiPath("vhosts", name)), get(apiPath("vhosts", name, "permissions"))]);
      if (!usersLoaded) {
        const users = await get("/api/users?columns=name");
        user.replaceChildren(...users.map((u) => h("option", { value: u.name }, u.name)));
        usersLoaded = true;
      }
      clear(
        overview,
        facts([
          ["Description", vhost.description || "–"],
          ["Tags", tagBadges(vhost.tags)],
          ["Messages", `${count(vhost.messages_ready)} ready, ${count(vhost.messages_unacknowledged)} unacked`],
          ["Publish rate", rate(rateOf(vhost.message_stats, "publish"))],
          ["Topology", link(pagePath("topology", name), "see its exchanges, bindings and queues")],
        ]),
      );
      clear(
        permissions,
        permissionTable(granted, { title: "User", value: (p) => link(pagePath("users", p.user), p.user) }, (p) => clearPermission(p, ctx)),
      );
    },
  };
}

// -- policies ------------------------------------------------------------------------------------

const POLICY_KEYS = [
  ["message-ttl", "number", "Message TTL"],
  ["expires", "number", "Auto expire"],
  ["max-length", "number", "Max length"],
  ["max-length-bytes", "number", "Max length bytes"],
  ["overflow", "string", "Overflow behaviour"],
  ["dead-letter-exchange", "string", "Dead letter exchange"],
  ["dead-letter-routing-key", "string", "Dead letter routing key"],
  ["alternate-exchange", "string", "Alternate exchange"],
  ["queue-mode", "string", "Queue mode"],
];

export function mountPolicies(ctx) {
  const form = policyForm(ctx);
  const list = pagedList({
    path: () => (ctx.vhost ? apiPath("policies", ctx.vhost) : "/api/policies"),
    noun: "policies",
    one: "policy",
    emptyText: "No policies. A policy gives every queue or exchange whose name matches its pattern the settings of its definition.",
    columns: [
      { title: "Virtual host", value: (p) => p.vhost },
      { title: "Name", value: (p) => p.name, className: "name" },
      { title: "Pattern", value: (p) => h("code", {}, p.pattern) },
      { title: "Apply to", value: (p) => p["apply-to"] },
      { title: "Definition", value: (p) => h("code", {}, jsonText(p.definition)) },
      { title: "Priority", value: (p) => String(p.priority), num: true },
      {
        title: "",
        value: (p) =>
          ctx.session.isPolicymaker
            ? h("span", { class: "row-actions" }, button("Edit", () => form.edit(p), "small"), button("Delete", () => deletePolicy(ctx, p), "small"))
            : "",
      },
    ],
  });
  form.refresh = list.refresh;
  ctx.root.append(
    h("h1", {}, "Admin"),
    subnav(ctx, "policies"),
    list.element,
    ctx.session.isPolicymaker ? fold("Add / update a policy", true, form.element) : null,
  );
  return { refresh: list.refresh };
}

async function deletePolicy(ctx, p) {
  if (!confirm(`Delete policy “${p.name}” in ${p.vhost}?`)) return;
  await attempt(null, async () => {
    await del(apiPath("policies", p.vhost, p.name));
    notify(`Policy “${p.name}” deleted.`);
    await ctx.refresh();
  });
}

function policyForm(ctx) {
  const vhost = select("vhost", ctx.session.vhosts, ctx.vhost || ctx.session.vhosts[0]);
  const name = h("input", { name: "name", required: true, autocomplete: "off" });
  const pattern = h("input", { name: "pattern", required: true, placeholder: "^amq.", autocomplete: "off" });
  const applyTo = select("apply-to", [["all", "Exchanges and queues"], ["exchanges", "Exchanges"], ["queues", "Queues"]], "all");
  const priority = h("input", { name: "priority", type: "number", value: 0 });
  const definition = keyValues(POLICY_KEYS, { nameLabel: "definition key" });
  const line = status();
  const result = {
    refresh: async () => {},
    edit(p) {
      vhost.value = p.vhost;
      name.value = p.name;
      pattern.value = p.pattern;
      applyTo.value = p["apply-to"];
      priority.value = p.priority;
      definition.set(p.definition);
      result.element.closest("details").open = true;
      name.focus();
    },
  };
  result.element = h(
    "form",
    {
      class: "stacked",
      onsubmit: async (event) => {
        event.preventDefault();
        line.clear();
        await attempt(line, async () => {
          await put(apiPath("policies", vhost.value, name.value), {
            pattern: pattern.value,
            definition: definition.value(),
            priority: Number(priority.value || 0),
            "apply-to": applyTo.value,
          });
          line.show(`Policy “${name.value}” saved.`);
          await result.refresh();
        });
      },
    },
    h("div", { class: "inline" }, field("Virtual host", vhost), field("Name", name), field("Pattern", pattern, "a regular expression")),
    h("div", { class: "inline" }, field("Apply to", applyTo), field("Priority", priority)),
    field("Definition", definition),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Add / update policy")),
    line,
  );
  return result;
}
