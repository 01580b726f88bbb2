// Calls to the Stepwell API, from the page's own origin: `stepwell dev` serves the API there,
// `stepwell ui` forwards (and signs) what it is sent.

export class ApiFailure extends Error {
  constructor(status, body) {
    const message = (body && body.message) || `HTTP ${status}`;
    super(message);
    this.status = status;
    this.body = body;
    this.details = (body && body.details) || null;
  }
}

export async function call(method, path, body) {
  const headers = {accept: "application/json", "x-stepwell-dashboard": "1"};
  const init = {method, headers, credentials: "same-origin", cache: "no-store"};
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiFailure(0, {message: `the API cannot be reached (${error.message})`});
  }
  heard(response.headers.get("date"));
  const text = await response.text();
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = {message: text.slice(0, 300)};
    }
  }
  if (!response.ok) throw new ApiFailure(response.status, parsed);
  return parsed;
}

/** Now by the API's clock: a local stack under virtual time runs ahead of this browser's. */
export function now() {
  return Date.now() + ahead;
}

let ahead = 0;

function heard(date) {
  const at = date ? new Date(date).getTime() : NaN;
  if (Number.isNaN(at)) return;
  // The header counts whole seconds: a gap under a few is this clock's, not virtual time.
  const gap = at - Date.now();
  ahead = Math.abs(gap) > 3000 ? gap : 0;
}

export const get = (path) => call("GET", path);
export const post = (path, body = {}) => call("POST", path, body);

export function query(params) {
  const pairs = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return pairs.length ? "?" + new URLSearchParams(pairs).toString() : "";
}

export const enc = encodeURIComponent;
