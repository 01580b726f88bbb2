// A waterfall of a run's attempts over time, read from its timeline: each step's attempts
// running, its retries' backoff, its waits (approval, callback, delay) and a fan-out's span.
import {h, s, duration} from "./dom.js";
import {now as apiNow} from "./api.js";

const OPENS = {
  step_dispatched: "running",
  step_retrying: "backoff",
  step_waiting: "waiting",
  step_delay_started: "delay",
  fanout_started: "fan-out",
  child_run_started: "child-run",
};
const ENDS = new Set([
  "step_completed", "step_failed", "step_skipped", "step_cancelled", "step_timed_out",
  "attempt_lost", "step_succeeded", "child_run_ended",
]);
const MARKS = new Set(["step_approved", "step_rejected", "step_answered", "approval_reminded",
  "approval_escalated", "callback_received", "heartbeat"]);
const MAX_CHILD_ROWS = 12;
const LABEL = 170, ROW = 20, MIN_BAR = 320;

/** The segments per step: {step: [{kind, from, to, outcome?}]}, and marks. */
export function segments(entries, now) {
  const rows = new Map();
  const open = new Map();
  for (const entry of entries) {
    if (!entry.step || entry.step === "$workflow") continue; // a code-first run's replay: no step of its own
    const at = new Date(entry.at).getTime();
    if (!rows.has(entry.step)) rows.set(entry.step, {bars: [], marks: []});
    const row = rows.get(entry.step);
    const close = (outcome) => {
      const current = open.get(entry.step);
      if (current) {
        row.bars.push({...current, to: at, outcome});
        open.delete(entry.step);
      }
    };
    if (entry.type in OPENS) {
      close(entry.type === "step_retrying" ? "failed" : undefined);
      const kind = entry.type === "step_waiting" ? `waiting (${entry.data?.waiting_for || "wait"})` : OPENS[entry.type];
      open.set(entry.step, {kind, from: at, attempt: entry.attempt});
    } else if (ENDS.has(entry.type)) {
      close(entry.type.replace("step_", ""));
    } else if (MARKS.has(entry.type)) {
      row.marks.push({at, type: entry.type, message: entry.message});
    }
  }
  for (const [step, current] of open) rows.get(step).bars.push({...current, to: now, outcome: "open"});
  return rows;
}

/** The waterfall, ``width`` pixels wide (its panel's width: the bars take what the labels
 *  leave). */
export function waterfall(entries, runEnded, width = 800) {
  if (!entries.length) return h("p", {class: "muted"}, "No timeline yet.");
  const BAR = Math.max(MIN_BAR, Math.floor(width) - LABEL - 12);
  const first = new Date(entries[0].at).getTime();
  const last = new Date(entries[entries.length - 1].at).getTime();
  const now = runEnded ? last : Math.max(last, apiNow());
  const span = Math.max(now - first, 1);
  const rows = segments(entries, now);
  const shown = [];
  const children = {};
  for (const [step, row] of rows) {
    const parent = step.includes("[") ? step.slice(0, step.indexOf("[")) : null;
    if (parent) {
      children[parent] = (children[parent] || 0) + 1;
      if (children[parent] > MAX_CHILD_ROWS) continue;
    }
    shown.push([step, row]);
  }
  const hidden = Object.entries(children).filter(([, n]) => n > MAX_CHILD_ROWS);
  const height = (shown.length + 1) * ROW + 8;
  const x = (t) => LABEL + ((t - first) / span) * BAR;
  const svg = s("svg", {class: "waterfall", width: LABEL + BAR + 10, height, viewBox: `0 0 ${LABEL + BAR + 10} ${height}`});
  svg.append(s("text", {x: LABEL, y: 12, class: "axis"}, "0"));
  svg.append(s("text", {x: LABEL + BAR, y: 12, class: "axis", "text-anchor": "end"}, duration(span)));
  shown.forEach(([step, row], i) => {
    const y = (i + 1) * ROW;
    const label = s("text", {x: 4, y: y + 13, class: "row-label"}, step.length > 25 ? step.slice(0, 24) + "…" : step);
    label.append(s("title", {}, step));
    svg.append(label);
    for (const bar of row.bars) {
      const kind = bar.kind.split(" ")[0];
      const rect = s("rect", {
        x: x(bar.from), y: y + 3, width: Math.max(x(bar.to) - x(bar.from), 2), height: ROW - 6,
        rx: 2, class: `seg seg-${kind} out-${bar.outcome || "ok"}`, "data-step": step,
      });
      const attempt = bar.attempt ? ` attempt ${bar.attempt}` : "";
      rect.append(s("title", {}, `${step}: ${bar.kind}${attempt}, ${duration(bar.to - bar.from)}${bar.outcome ? ` (${bar.outcome})` : ""}`));
      svg.append(rect);
    }
    for (const mark of row.marks) {
      const m = s("circle", {cx: x(mark.at), cy: y + ROW / 2, r: 4, class: `mark mark-${mark.type}`});
      m.append(s("title", {}, `${mark.type.replace("_", " ")} ${mark.message || ""}`));
      svg.append(m);
    }
  });
  const legend = h("p", {class: "legend"},
    ["running", "backoff", "waiting", "delay", "fan-out", "child-run"].map((k) => h("span", {class: `key seg-${k}`}, k)),
    hidden.map(([p, n]) => h("span", {class: "muted"}, ` ${p}: ${n - MAX_CHILD_ROWS} more children not drawn`)));
  return h("div", {class: "waterfall-box"}, svg, legend);
}
