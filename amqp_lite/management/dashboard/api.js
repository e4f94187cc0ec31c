// The dashboard's only way to the broker: the management HTTP API, with HTTP basic auth.
// Credentials live in sessionStorage, as RabbitMQ's UI keeps them: gone when the tab closes.

const KEY = "amqp-lite.credentials";

export class ApiError extends Error {
  constructor(status, body) {
    const reason = body && typeof body === "object" ? body.reason : null;
    super(typeof reason === "string" ? reason : reason ? JSON.stringify(reason) : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }

  /** The credentials themselves were refused (not a missing permission). */
  get loginFailed() {
    return this.status === 401 && (!this.body || this.body.reason === "Login failed");
  }
}

function encode(text) {
  const bytes = new TextEncoder().encode(text);
  return btoa(String.fromCharCode(...bytes));
}

export function saveCredentials(user, password) {
  sessionStorage.setItem(KEY, JSON.stringify({ user, token: encode(`${user}:${password}`) }));
}

export function forgetCredentials() {
  sessionStorage.removeItem(KEY);
}

export function credentials() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY));
  } catch {
    return null;
  }
}

let onLoginFailed = () => {};

/** What to do when the broker no longer takes the stored credentials (password changed...). */
export function whenLoginFails(callback) {
  onLoginFailed = callback;
}

export async function request(method, path, body, headers = {}) {
  const stored = credentials();
  // credentials "omit": the Authorization header below is the only credential sent, and a 401
  // comes back to this code instead of making the browser ask for a password itself.
  const init = { method, cache: "no-store", credentials: "omit", headers: { ...headers } };
  if (stored) init.headers.Authorization = `Basic ${stored.token}`;
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (error.loginFailed) onLoginFailed(error);
    throw error;
  }
  return data;
}

export const get = (path) => request("GET", path);
export const put = (path, body = {}) => request("PUT", path, body);
export const post = (path, body = {}) => request("POST", path, body);
export const del = (path, headers) => request("DELETE", path, undefined, headers);

/** A list endpoint, one page of it: RabbitMQ's page object. */
export function page(path, { page: number = 1, size = 100, name = "", sort = "", reverse = false } = {}) {
  const query = new URLSearchParams({ page: String(number), page_size: String(size) });
  if (name) query.set("name", name);
  if (sort) query.set("sort", sort);
  if (reverse) query.set("sort_reverse", "true");
  return get(`${path}?${query}`);
}
