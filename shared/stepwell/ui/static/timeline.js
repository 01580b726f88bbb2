// A run's timeline as a table: a page of rows at a time (a wide run has thousands of
// entries), filtered by what a person types (a step, a type, words of a message) or by the
// selected step, each entry's time as an offset from the run's start (its moment on hover).
import {h, json, when, duration} from "./dom.js";

const ROWS = 50;

export function timelineTable() {
  let entries = [];
  let page = 0;
  let last = true; // on the last page: it follows the run as entries come
  let step = null;
  const filter = h("input", {type: "search", name: "timeline-filter", placeholder: "filter: step, type or words", "aria-label": "filter the timeline"});
  const only = h("input", {type: "checkbox", name: "timeline-step"});
  const onlyLabel = h("label", {class: "inline", hidden: true}, only, " ", h("span", {}, ""));
  const body = h("tbody");
  const where = h("span", {class: "muted", "data-rows": ""});
  const earlier = h("button", {type: "button", "data-page": "earlier", onclick: () => go(page - 1)}, "← Earlier");
  const later = h("button", {type: "button", "data-page": "later", onclick: () => go(page + 1)}, "Later →");
  filter.addEventListener("input", () => { page = 0; last = false; draw(); });
  only.addEventListener("change", () => { page = 0; last = false; draw(); });

  function shown() {
    const words = filter.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    return entries.filter((e) => (!only.checked || !step || e.step === step) &&
      words.every((w) => `${e.type} ${e.step || ""} ${e.message}`.toLowerCase().includes(w)));
  }

  function go(to) {
    const pages = Math.max(1, Math.ceil(shown().length / ROWS));
    page = Math.min(Math.max(0, to), pages - 1);
    last = page === pages - 1;
    draw();
  }

  function draw() {
    const rows = shown();
    const pages = Math.max(1, Math.ceil(rows.length / ROWS));
    if (last) page = pages - 1;
    page = Math.min(page, pages - 1);
    const start = entries.length ? new Date(entries[0].at).getTime() : 0;
    const from = page * ROWS;
    body.replaceChildren(...rows.slice(from, from + ROWS).map((entry) => row(entry, start)));
    if (!rows.length) body.append(h("tr", {}, h("td", {colspan: 5, class: "muted"}, entries.length ? "No entry matches the filter." : "No timeline yet.")));
    where.textContent = rows.length ? `${from + 1}–${Math.min(from + ROWS, rows.length)} of ${rows.length}` +
      (rows.length < entries.length ? ` (${entries.length} in all)` : "") : "";
    earlier.disabled = page === 0;
    later.disabled = page >= pages - 1;
  }

  return {
    element: h("div", {class: "timeline-box"},
      h("div", {class: "timeline-tools"}, filter, onlyLabel),
      h("table", {class: "timeline small"}, h("thead", {}, h("tr", {}, ["at", "type", "step", "attempt", "message"].map((t) => h("th", {}, t)))), body),
      h("div", {class: "pager"}, earlier, where, later)),
    /** Show these entries (all loaded so far) and the selected step (for "only this step"). */
    update(all, selected) {
      entries = all;
      step = selected;
      onlyLabel.hidden = !selected;
      onlyLabel.lastChild.textContent = selected ? `only ${selected}` : "";
      draw();
    },
  };
}

function row(entry, start) {
  const data = entry.data && Object.keys(entry.data).length ? h("details", {}, h("summary", {}, "data"), json(entry.data)) : null;
  const at = new Date(entry.at);
  const offset = at.getTime() - start;
  return h("tr", {"data-type": entry.type},
    h("td", {class: "mono"}, h("time", {title: `${when(entry.at)}.${String(at.getMilliseconds()).padStart(3, "0")}`}, `+${duration(offset)}`)),
    h("td", {}, entry.type), h("td", {class: "mono"}, entry.step || ""), h("td", {}, entry.attempt ?? ""),
    h("td", {}, entry.message, data));
}
