// Small helpers for building the page: elements, formatting, status badges.
import {now} from "./api.js";

const SVG_NS = "http://www.w3.org/2000/svg";

/** An element: h("a", {href: "#/runs", class: "x"}, "text", child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  return fill(el, attrs, children);
}

/** An SVG element, as h() makes HTML ones. */
export function s(tag, attrs = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

function fill(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const TERMINAL = ["succeeded", "failed", "cancelled", "timed_out", "skipped"];
export const STATUSES = ["pending", "scheduled", "queued", "running", "waiting", "succeeded", "failed", "cancelled", "timed_out"];

export function badge(status) {
  return h("span", {class: `badge st-${status}`, "data-status": status}, status.replace("_", " "));
}

export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "3 min ago", "in 12 s": a moment relative to now (the API's). */
export function ago(iso) {
  const ms = new Date(iso).getTime() - now();
  if (Math.abs(ms) < 1000) return "just now";
  return ms < 0 ? `${duration(-ms)} ago` : `in ${duration(ms)}`;
}

/** A moment shown relative to now, the date and time on hover (and in ``datetime``). */
export function stamp(iso) {
  if (!iso) return "—";
  return h("time", {datetime: iso, title: when(iso)}, ago(iso));
}

/** "1.2 s", "3 min 4 s", "2 h 5 min" from milliseconds. */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const secs = ms / 1000;
  if (secs < 60) return `${secs.toFixed(secs < 10 ? 1 : 0)} s`;
  const mins = Math.floor(secs / 60);
  if (mins < 60) return `${mins} min ${Math.round(secs % 60)} s`;
  const hours = Math.floor(mins / 60);
  if (hours < 48) return `${hours} h ${mins % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** How long a record ran: its start to its end, or to now while it runs. */
export function elapsed(record) {
  const start = record.started_at || record.created_at;
  if (!start) return null;
  const end = record.ended_at ? new Date(record.ended_at) : new Date(now());
  return end - new Date(start);
}

export function money(usd) {
  if (!usd) return "$0";
  return usd < 0.01 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

export function tokens(usage) {
  const total = (usage?.input_tokens || 0) + (usage?.output_tokens || 0);
  return total ? total.toLocaleString("en-US") : "0";
}

export function json(value) {
  return h("pre", {class: "json"}, JSON.stringify(value, null, 2));
}

export function link(path, text, attrs = {}) {
  return h("a", {href: `#${path}`, ...attrs}, text);
}

export function runLink(id) {
  return link(`/runs/${encodeURIComponent(id)}`, id, {class: "mono"});
}

/** Bytes for a person: 70 KB, 1.2 MB. */
export function size(bytes) {
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** A term and its description, for a <dl class="facts">. */
export function fact(name, value) {
  return [h("dt", {}, name), h("dd", {}, value)];
}
