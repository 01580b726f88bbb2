// A run: its graph coloured by status, the waterfall of its attempts, the selected step's
// details and actions, its timeline (paged, followed while the run is open) and usage.
import {get, post, enc} from "./api.js";
import {h, fact, badge, when, duration, elapsed, money, tokens, runLink, link, json, TERMINAL} from "./dom.js";
import {graph} from "./graph.js";
import {waterfall} from "./waterfall.js";
import {stepPanel, payloads} from "./steps.js";
import {control, textField} from "./actions.js";

const POLL_MS = 1500;
const TIMELINE_PAGE = 200;
const TIMELINE_PAGES_AT_ONCE = 5;

export async function runPage(root, [runId]) {
  const base = `/runs/${enc(runId)}`;
  let detail = await get(base);
  const definition = await workflowOf(detail.run);
  const specs = definition?.definition?.steps || {};
  let selected = new URLSearchParams(location.hash.split("?")[1] || "").get("step") || null;
  let panelSignature = "";
  const timeline = {entries: [], cursor: null, full: false};
  let timer = null;
  let left = false;

  const header = h("div", {class: "run-head"});
  const notice = h("div", {class: "notice", "data-notice": "", role: "status", hidden: true});
  const notify = (message) => {
    notice.hidden = false;
    notice.replaceChildren(message);
  };
  const graphBox = h("div", {class: "graph-box"});
  const panelBox = h("div", {class: "panel-box"});
  const waterfallBox = h("div");
  const timelineBody = h("tbody");
  const moreTimeline = h("button", {type: "button", hidden: true, onclick: () => loadTimeline(true)}, "More entries");

  async function loadTimeline(more = false) {
    // The first load and "More entries" read several pages; a poll reads what is new.
    const most = more || !timeline.entries.length ? TIMELINE_PAGES_AT_ONCE : 1;
    let pages = 0;
    while (pages < most) {
      const cursor = timeline.cursor ? `&cursor=${enc(timeline.cursor)}` : "";
      const page = await get(`${base}/timeline?limit=${TIMELINE_PAGE}${cursor}`);
      timeline.entries.push(...page.entries);
      if (page.cursor) timeline.cursor = page.cursor;
      pages += 1;
      timeline.full = page.entries.length === TIMELINE_PAGE;
      if (!timeline.full) break;
    }
    moreTimeline.hidden = !timeline.full;
  }

  function nodes() {
    const byKey = Object.fromEntries(detail.steps.map((st) => [st.key, st]));
    const keys = Object.keys(specs).length ? Object.keys(specs) : detail.steps.map((st) => st.key);
    return keys.map((key) => {
      const st = byKey[key] || {key, status: "pending"};
      const node = {id: key, label: st.name || key, status: st.status, note: noteOf(st, specs[key])};
      if (specs[key]?.for_each || st.items_total !== null && st.items_total !== undefined) {
        const total = st.items_total ?? null;
        const done = st.children_succeeded || 0, failed = st.children_failed || 0;
        const running = total === null ? 0 : (TERMINAL.includes(st.status) ? 0 : Math.max(0, Math.min(total - done - failed, specs[key]?.max_parallel || total)));
        node.progress = {done, failed, running, total};
      }
      return node;
    });
  }

  function edges() {
    if (definition?.upstream && Object.keys(definition.upstream).length) return definition.upstream;
    return Object.fromEntries(detail.steps.map((st) => [st.key, st.after || []]));
  }

  function select(key) {
    selected = key;
    panelSignature = "";
    draw();
  }

  function draw() {
    const run = detail.run;
    header.replaceChildren(...head(run).filter(Boolean));
    graphBox.replaceChildren(graph(nodes(), edges(), select, selected, true));
    const step = detail.steps.find((st) => st.key === selected) || (selected ? {key: selected, status: "pending", attempt: 0} : null);
    const signature = JSON.stringify([run.status, step?.status, step?.attempt, step?.waiting_for,
      step?.children_succeeded, step?.children_failed, step?.decisions?.length]);
    if (signature !== panelSignature) {
      panelSignature = signature;
      panelBox.replaceChildren(step
        ? stepPanel({run, step, spec: specs[step.key], refresh, notify})
        : h("p", {class: "muted"}, "Select a step in the graph to see its input, output and error, and to act on it."));
    }
    waterfallBox.replaceChildren(waterfall(timeline.entries, TERMINAL.includes(run.status)));
    timelineBody.replaceChildren(...timeline.entries.map(entryRow));
  }

  function head(run) {
    const ended = TERMINAL.includes(run.status);
    const reason = textField("reason", "reason (optional)");
    const lineage = [
      run.rerun_of ? h("span", {}, "rerun of ", runLink(run.rerun_of)) : null,
      run.parent_run_id ? h("span", {}, "child of ", runLink(run.parent_run_id)) : null,
      ...detail.steps.filter((st) => st.child_run_id).map((st) => h("span", {}, `${st.key} → `, runLink(st.child_run_id))),
    ].filter(Boolean);
    return [
      h("h1", {}, h("span", {class: "mono", id: "run-id"}, run.id), " ", h("span", {id: "run-status"}, badge(run.status)),
        run.dry_run ? h("span", {class: "muted"}, " dry run") : null),
      h("dl", {class: "facts wide"},
        fact("workflow", link(`/workflows/${enc(run.workflow)}`, run.workflow)),
        fact("version", h("span", {class: "mono"}, run.version)),
        fact("started", when(run.started_at || run.created_at)),
        fact("ended", when(run.ended_at)),
        fact("duration", duration(elapsed(run))),
        fact("cost", money(run.usage?.cost_usd)),
        fact("tokens", `${tokens(run.usage)} (${run.usage?.input_tokens || 0} in, ${run.usage?.output_tokens || 0} out)`),
        Object.keys(run.labels || {}).length ? fact("labels", Object.entries(run.labels).map(([k, v]) => h("span", {class: "label"}, `${k}=${v}`))) : null,
        lineage.length ? fact("lineage", lineage) : null,
      ),
      ended ? null : h("div", {class: "actions"}, reason.element,
        control({name: "cancel", label: "Cancel run", danger: true, question: `Cancel run ${run.id}?`,
          perform: async () => {
            const r = await post(`${base}/cancel`, {reason: reason.value()});
            notify(r.message);
            await refresh();
            return r.message;
          }})),
      h("details", {class: "run-payloads"}, h("summary", {}, "Run input, output and error"), ...payloads(run)),
    ];
  }

  async function refresh() {
    detail = await get(base);
    await loadTimeline();
    draw();
    follow();
  }

  function follow() {
    clearTimeout(timer);
    if (left || TERMINAL.includes(detail.run.status)) return;
    timer = setTimeout(async () => {
      try { await refresh(); } catch (error) { header.append(h("p", {class: "error"}, error.message)); follow(); }
    }, POLL_MS);
  }

  await loadTimeline();
  if (!selected) selected = (detail.steps.find((st) => st.waiting_for) || detail.steps.find((st) => st.status === "failed"))?.key || null;
  root.append(
    header,
    notice,
    h("div", {class: "run-body"},
      h("section", {class: "card"}, h("h2", {}, "Steps"), graphBox),
      h("section", {class: "card"}, panelBox)),
    h("section", {class: "card"}, h("h2", {}, "Waterfall"), waterfallBox),
    h("section", {class: "card"}, h("h2", {}, "Timeline"),
      h("table", {class: "timeline small"}, h("thead", {}, h("tr", {}, ["at", "type", "step", "attempt", "message"].map((t) => h("th", {}, t)))), timelineBody),
      moreTimeline),
  );
  draw();
  follow();
  return () => { left = true; clearTimeout(timer); };
}

async function workflowOf(run) {
  try {
    return await get(`/workflows/${enc(run.workflow)}?version=${enc(run.version)}`);
  } catch {
    return null; // a workflow no longer deployed: the graph comes from the steps alone
  }
}

function noteOf(step, spec) {
  if (step.waiting_for) return `waiting for ${step.waiting_for}`;
  if (step.attempt > 1) return `${step.status} · attempt ${step.attempt}`;
  return spec?.type && spec.type !== "task" ? `${step.status} · ${spec.type}` : step.status;
}

function entryRow(entry) {
  const data = entry.data && Object.keys(entry.data).length ? h("details", {}, h("summary", {}, "data"), json(entry.data)) : null;
  return h("tr", {"data-type": entry.type},
    h("td", {class: "mono"}, when(entry.at) + "." + String(new Date(entry.at).getMilliseconds()).padStart(3, "0")),
    h("td", {}, entry.type), h("td", {class: "mono"}, entry.step || ""), h("td", {}, entry.attempt ?? ""),
    h("td", {}, entry.message, data));
}
