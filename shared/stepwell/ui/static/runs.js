// The runs list: newest first, filtered by workflow, status and label, searched by run id,
// paged by cursor, refreshed live while the first page is shown.
import {get, query, ApiFailure, enc} from "./api.js";
import {h, badge, stamp, duration, elapsed, money, tokens, runLink, link, STATUSES} from "./dom.js";

const LIVE_MS = 3000;

export async function runsPage(root, _args, params) {
  const filters = {
    workflow: params.get("workflow") || "",
    status: params.get("status") || "",
    label: params.get("label") || "",
  };
  const cursors = [null]; // cursors[i] opens page i
  let page = 0;
  let timer = null;
  const {workflows} = await get("/workflows");

  const select = (name, options) =>
    h("select", {name, "aria-label": name, onchange: apply},
      h("option", {value: ""}, `any ${name}`),
      options.map((o) => h("option", {value: o, selected: filters[name] === o}, o)));
  const label = h("input", {name: "label", placeholder: "label key=value", value: filters.label});
  const search = h("input", {name: "run", placeholder: "run id", class: "mono"});
  const searchNote = h("span", {class: "error", role: "alert"});
  const live = h("input", {type: "checkbox", name: "live", checked: true});
  const table = h("tbody");
  const status = h("span", {class: "muted"});
  const newer = h("button", {type: "button", onclick: () => go(page - 1)}, "← Newer");
  const older = h("button", {type: "button", onclick: () => go(page + 1)}, "Older →");

  function apply() {
    const form = root.querySelector("form.filters");
    const next = {
      workflow: form.workflow.value, status: form.status.value, label: form.label.value.trim(),
    };
    location.hash = "#/runs" + query(next);
  }

  async function find(event) {
    event.preventDefault();
    const id = search.value.trim();
    if (!id) return;
    try {
      await get(`/runs/${enc(id)}`);
      location.hash = `#/runs/${enc(id)}`;
    } catch (error) {
      searchNote.textContent = error instanceof ApiFailure && error.status === 404
        ? `No run ${id}.` : error.message;
    }
  }

  async function load() {
    const listing = await get("/runs" + query({...filters, cursor: cursors[page], limit: 25}));
    cursors[page + 1] = listing.cursor;
    table.replaceChildren(...listing.runs.map(row));
    if (!listing.runs.length) {
      table.append(h("tr", {}, h("td", {colspan: 8, class: "muted"}, "No runs yet. Start one from a workflow's page.")));
    }
    newer.disabled = page === 0;
    older.disabled = !listing.cursor;
    status.textContent = `page ${page + 1}`;
  }

  async function go(to) {
    page = Math.max(0, to);
    await load();
  }

  function tick() {
    timer = setTimeout(async () => {
      if (live.checked && page === 0) {
        try { await load(); } catch (error) { status.textContent = error.message; }
      }
      tick();
    }, LIVE_MS);
  }

  root.append(
    h("div", {class: "head"}, h("h1", {}, "Runs"),
      h("form", {class: "search", onsubmit: find}, search, h("button", {}, "Open"), searchNote)),
    h("form", {class: "filters", onsubmit: (e) => { e.preventDefault(); apply(); }},
      select("workflow", workflows.map((w) => w.name)),
      select("status", STATUSES),
      label, h("button", {}, "Filter"),
      h("label", {class: "live"}, live, " live")),
    h("table", {class: "runs"},
      h("thead", {}, h("tr", {}, ["Run", "Workflow", "Status", "Labels", "Started", "Duration", "Cost", "Tokens"].map((t) => h("th", {}, t)))),
      table),
    h("div", {class: "pager"}, newer, status, older),
  );
  await load();
  tick();
  return () => clearTimeout(timer);
}

function row(run) {
  const labels = Object.entries(run.labels || {}).map(([k, v]) => h("span", {class: "label"}, `${k}=${v}`));
  const lineage = run.rerun_of ? h("span", {class: "muted"}, " rerun") : run.parent_run_id ? h("span", {class: "muted"}, " child") : null;
  return h("tr", {"data-run": run.id},
    h("td", {}, runLink(run.id), lineage, run.dry_run ? h("span", {class: "muted"}, " dry run") : null),
    h("td", {}, link(`/workflows/${enc(run.workflow)}`, run.workflow)),
    h("td", {}, badge(run.status)),
    h("td", {}, labels),
    h("td", {}, stamp(run.started_at || run.created_at)),
    h("td", {}, duration(elapsed(run))),
    h("td", {}, money(run.usage?.cost_usd)),
    h("td", {}, tokens(run.usage)),
  );
}
