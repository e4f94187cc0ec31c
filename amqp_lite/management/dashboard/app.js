// The dashboard's shell: logging in, the tabs a user's tags allow, hash routes, and the
// refresh loop that polls the page shown.

import { credentials, forgetCredentials, get, saveCredentials, whenLoginFails } from "./api.js";
import * as admin from "./admin.js";
import * as connections from "./connections.js";
import * as exchanges from "./exchanges.js";
import * as overview from "./overview.js";
import * as queues from "./queues.js";
import * as topology from "./routing.js";
import { button, clear, empty, field, h, select } from "./ui.js";

const VHOST_KEY = "amqp-lite.vhost";
const INTERVAL_KEY = "amqp-lite.interval";
const INTERVALS = [
  ["2000", "Refresh: 2 s"],
  ["5000", "Refresh: 5 s"],
  ["10000", "Refresh: 10 s"],
  ["30000", "Refresh: 30 s"],
  ["0", "Refresh: off"],
];

// Each route: [tab, segments after the tab it takes, mount]. The first that fits is shown.
const ROUTES = [
  ["", 0, overview.mount],
  ["connections", 0, connections.mountList],
  ["connections", 1, connections.mountDetail],
  ["channels", 0, connections.mountChannels],
  ["exchanges", 0, exchanges.mountList],
  ["exchanges", 2, exchanges.mountDetail],
  ["queues", 0, queues.mountList],
  ["queues", 2, queues.mountDetail],
  ["topology", 0, topology.mount],
  ["topology", 1, topology.mount],
  ["topology", 2, topology.mount],
  ["users", 0, admin.mountUsers],
  ["users", 1, admin.mountUser],
  ["vhosts", 0, admin.mountVhosts],
  ["vhosts", 1, admin.mountVhost],
  ["policies", 0, admin.mountPolicies],
];

const session = {
  user: "",
  tags: [],
  vhosts: [],
  has(...tags) {
    return tags.some((tag) => this.tags.includes(tag));
  },
  get isAdmin() {
    return this.has("administrator");
  },
  get isMonitor() {
    return this.has("administrator", "monitoring");
  },
  get isPolicymaker() {
    return this.has("administrator", "policymaker");
  },
};

const main = document.getElementById("main");
const tabs = document.getElementById("tabs");
const bar = document.getElementById("session");
let shown = null; // {refresh, dispose?} of the page on screen
let generation = 0;
let timer = 0;

// -- logging in ----------------------------------------------------------------------------------

function showLogin(message = "") {
  stopRefreshing();
  tabs.hidden = true;
  bar.hidden = true;
  const user = h("input", { name: "username", autocomplete: "username", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password" });
  const error = h("p", { class: "status" }, message ? h("span", { class: "error" }, message) : null);
  const form = h(
    "form",
    { class: "login panel", onsubmit: (event) => login(event, user.value, password.value, error) },
    h("h1", {}, "Log in"),
    h("p", { class: "muted" }, "Use a broker user tagged management, policymaker, monitoring or administrator."),
    field("Username", user),
    field("Password", password),
    h("button", { type: "submit", class: "primary" }, "Log in"),
    error,
  );
  clear(main, form);
  user.focus();
}

async function login(event, user, password, error) {
  event.preventDefault();
  saveCredentials(user, password);
  try {
    await start();
  } catch (failure) {
    forgetCredentials();
    clear(error, h("span", { class: "error" }, failure.message === "Login failed" ? "Login failed: wrong username or password." : failure.message));
  }
}

function logout() {
  forgetCredentials();
  session.user = "";
  location.hash = "#/";
  showLogin();
}

// Only once logged in: a failed login attempt says so in its own form.
whenLoginFails(() => {
  if (!session.user) return;
  session.user = "";
  forgetCredentials();
  showLogin("The broker refused the stored credentials: log in again.");
});

async function start() {
  const me = await get("/api/whoami");
  session.user = me.name;
  session.tags = me.tags;
  await loadVhosts();
  drawChrome();
  route();
}

async function loadVhosts() {
  session.vhosts = (await get("/api/vhosts?columns=name")).map((v) => v.name);
}

// -- the header: tabs, vhost, refresh, who is logged in -------------------------------------------

function drawChrome() {
  const items = [
    ["", "Overview"],
    ["connections", "Connections"],
    ["channels", "Channels"],
    ["exchanges", "Exchanges"],
    ["queues", "Queues"],
    ["topology", "Topology"],
  ];
  if (session.isAdmin) items.push(["users", "Admin"]);
  else if (session.isPolicymaker) items.push(["policies", "Admin"]);
  clear(
    tabs,
    items.map(([tab, label]) => h("a", { href: `#/${tab}`, dataset: { tab } }, label)),
  );
  tabs.hidden = false;
  const stored = sessionStorage.getItem(VHOST_KEY) || "";
  const vhost = select("vhost", [["", "All virtual hosts"], ...session.vhosts.map((v) => [v, v])], stored);
  vhost.title = "Virtual host shown in the lists";
  vhost.addEventListener("change", () => {
    sessionStorage.setItem(VHOST_KEY, vhost.value);
    route();
  });
  const interval = select("interval", INTERVALS, sessionStorage.getItem(INTERVAL_KEY) || "5000");
  interval.addEventListener("change", () => {
    sessionStorage.setItem(INTERVAL_KEY, interval.value);
    schedule();
  });
  interval.title = "How often the page asks the broker again";
  clear(
    bar,
    h("span", { class: "who" }, "User ", h("strong", { id: "user-name" }, session.user)),
    vhost,
    interval,
    h("span", { id: "refreshed", class: "muted" }),
    button("Refresh now", () => refresh(), "small"),
    button("Log out", logout, "small"),
  );
  bar.hidden = false;
}

export function selectedVhost() {
  const vhost = sessionStorage.getItem(VHOST_KEY) || "";
  return session.vhosts.includes(vhost) ? vhost : "";
}

// -- routes and refreshing -------------------------------------------------------------------------

function segments() {
  const path = location.hash.replace(/^#\/?/, "");
  return path ? path.split("/").map(decodeURIComponent) : [""];
}

function route() {
  if (!credentials() || !session.user) return;
  stopRefreshing();
  const [tab, ...params] = segments();
  const found = ROUTES.find(([name, arity]) => name === tab && arity === params.length);
  for (const link of tabs.querySelectorAll("a")) {
    const active = link.dataset.tab === tab || (link.dataset.tab === "users" && ["vhosts", "policies"].includes(tab));
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  generation += 1;
  // For scripts and assistive technology: which page, and whether its data is there yet.
  main.dataset.route = location.hash || "#/";
  main.setAttribute("aria-busy", "true");
  const root = h("div", { class: "page" });
  clear(main, root);
  if (!found) {
    root.append(h("h1", {}, "Not found"), empty("There is no such page."));
    main.setAttribute("aria-busy", "false");
    return;
  }
  const context = {
    root,
    params,
    session,
    vhost: selectedVhost(),
    go: (hash) => {
      location.hash = hash;
    },
    refresh: () => refresh(),
    // Before deleting the page's own object: no refresh may ask for it afterwards.
    pause: () => {
      clearTimeout(timer);
      generation += 1;
    },
    reloadVhosts: async () => {
      await loadVhosts();
      drawChrome();
    },
  };
  shown = found[2](context);
  refresh();
}

async function refresh() {
  clearTimeout(timer);
  const mine = generation;
  const page = shown;
  if (!page) return;
  try {
    await page.refresh();
    if (mine !== generation) return;
    const refreshed = document.getElementById("refreshed");
    if (refreshed) refreshed.textContent = `Updated ${new Date().toLocaleTimeString("en-GB")}`;
    main.querySelector(".page")?.classList.remove("stale");
    main.setAttribute("aria-busy", "false");
  } catch (error) {
    if (mine !== generation) return;
    if (error.loginFailed) return;
    if (error.status === 404) {
      clear(main.querySelector(".page"), h("h1", {}, "Not found"), empty("This object does not exist (any more)."));
      main.setAttribute("aria-busy", "false");
      shown = null;
      return;
    }
    if (error.status === 401) {
      // Logged in, but these tags do not reach this page.
      clear(main.querySelector(".page"), h("h1", {}, "Not allowed"), empty(`The broker says: ${error.message}`));
      main.setAttribute("aria-busy", "false");
      shown = null;
      return;
    }
    const page = main.querySelector(".page");
    page?.classList.add("stale");
    main.setAttribute("aria-busy", "false");
    const refreshed = document.getElementById("refreshed");
    if (refreshed) refreshed.textContent = `Could not refresh: ${error.message}`;
  }
  if (mine === generation) schedule();
}

function schedule() {
  clearTimeout(timer);
  const interval = Number(sessionStorage.getItem(INTERVAL_KEY) || "5000");
  if (interval > 0) timer = setTimeout(refresh, interval);
}

function stopRefreshing() {
  clearTimeout(timer);
  shown?.dispose?.();
  shown = null;
}

window.addEventListener("hashchange", route);

if (credentials()) {
  start().catch((error) => {
    forgetCredentials();
    showLogin(error.message);
  });
} else {
  showLogin();
}
