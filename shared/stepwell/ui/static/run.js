// A run: the path it took on its workflow's whole graph, the waterfall of its attempts, the
// selected step's details and actions, its timeline (paged, filtered, followed while the run
// is open), its usage, and a new run with its input.
import {get, post, enc} from "./api.js";
import {h, fact, badge, stamp, duration, elapsed, money, tokens, runLink, link, TERMINAL} from "./dom.js";
import {graph} from "./graph.js";
import {runGraph, currentRecord, REPLAY} from "./runmap.js";
import {waterfall} from "./waterfall.js";
import {stepPanel, payloads} from "./steps.js";
import {control, textField} from "./actions.js";
import {timelineTable} from "./timeline.js";
import {startForm} from "./workflows.js";
import {eventsReceived} from "./events.js";

const POLL_MS = 1500;
const TIMELINE_PAGE = 200;
const TIMELINE_PAGES_AT_ONCE = 5;

export async function runPage(root, [runId]) {
  const base = `/runs/${enc(runId)}`;
  let detail = await get(base);
  const workflow = await workflowOf(detail.run);
  const specs = workflow?.definition?.steps || {};
  let selected = new URLSearchParams(location.hash.split("?")[1] || "").get("step") || null;
  let panelSignature = "";
  const timeline = {entries: [], cursor: null, full: false};
  let timer = null;
  let left = false;
  let map = runGraph(workflow, detail);

  const header = h("div", {class: "run-head"});
  const notice = h("div", {class: "notice", "data-notice": "", role: "status", hidden: true});
  const notify = (message) => {
    notice.hidden = false;
    notice.replaceChildren(message);
  };
  const graphBox = h("div", {class: "graph-box"});
  const panelBox = h("div", {class: "panel-box"});
  const waterfallBox = h("div", {class: "waterfall-panel"});
  const table = timelineTable();
  const received = eventsReceived();
  const moreTimeline = h("button", {type: "button", hidden: true, onclick: () => loadTimeline(true).then(draw)}, "Load more entries");

  let reading = Promise.resolve();
  function loadTimeline(more = false) {
    // One read at a time: a poll and the refresh after an action, both reading from the same
    // cursor, would each append the same new entries.
    const read = reading.then(() => readTimeline(more));
    reading = read.catch(() => {});
    return read;
  }

  async function readTimeline(more) {
    // The first load and "Load more" read several pages; a poll reads what is new.
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

  /** A click on a node opens the record of it that is open (or the newest); a node never
   *  reached has none. */
  function select(id) {
    const node = map.nodes.find((n) => n.id === id);
    selected = node ? currentRecord(node.records, detail.steps) || id : id;
    panelSignature = "";
    draw();
  }

  function draw() {
    const run = detail.run;
    map = runGraph(workflow, detail);
    header.replaceChildren(...head(run).filter(Boolean));
    const chosenNode = selected ? map.nodeOf(selected) || selected : null;
    graphBox.replaceChildren(graph(map.nodes, map.edges, select, chosenNode, true));
    drawPanel(run, chosenNode);
    drawWaterfall();
    table.update(timeline.entries, selected);
    received.update(timeline.entries);
  }

  function drawPanel(run, nodeId) {
    const step = detail.steps.find((st) => st.key === selected);
    const node = map.nodes.find((n) => n.id === nodeId);
    const signature = JSON.stringify([selected, run.status, step?.status, step?.attempt, step?.waiting_for,
      step?.children_succeeded, step?.children_failed, step?.decisions?.length, node?.status]);
    if (signature === panelSignature) return;
    panelSignature = signature;
    if (step && step.key !== REPLAY) {
      panelBox.replaceChildren(stepPanel({run, step, spec: specs[node?.id || step.key], refresh, notify,
        siblings: node?.records || [], onSelect: (key) => { selected = key; panelSignature = ""; draw(); }}));
    } else if (node) {
      panelBox.replaceChildren(h("section", {class: "step-panel", "data-panel": node.id},
        h("h2", {}, node.label, " ", badge(node.status)),
        h("p", {class: "muted"}, node.status === "unreached" || node.status === "pending"
          ? `The run has not reached this ${workflow?.kind === "asl" ? "state" : "step"}.`
          : `A ${node.kind} state keeps no record of its own: the run went through it.`)));
    } else {
      panelBox.replaceChildren(h("p", {class: "muted"}, "Select a step in the graph to see its input, output and error, why it waits, its logs, and to act on it."));
    }
  }

  function drawWaterfall() {
    const width = waterfallBox.clientWidth;
    if (!width) return; // not on the page yet: drawn when its size is known
    waterfallBox.replaceChildren(waterfall(timeline.entries, TERMINAL.includes(detail.run.status), width));
  }

  function head(run) {
    const ended = TERMINAL.includes(run.status);
    const reason = textField("reason", "reason (optional)");
    const lineage = [
      run.rerun_of ? h("span", {}, "rerun of ", runLink(run.rerun_of)) : null,
      run.parent_run_id ? h("span", {}, "child of ", runLink(run.parent_run_id)) : null,
      run.continued_from ? h("span", {}, "continues ", runLink(run.continued_from)) : null,
      ...detail.steps.filter((st) => st.child_run_id).map((st) => h("span", {}, `${st.key} → `, runLink(st.child_run_id))),
    ].filter(Boolean);
    return [
      h("h1", {}, h("span", {class: "mono", id: "run-id"}, run.id), " ", h("span", {id: "run-status"}, badge(run.status)),
        run.dry_run ? h("span", {class: "muted"}, " dry run") : null),
      h("dl", {class: "facts wide"},
        fact("workflow", link(`/workflows/${enc(run.workflow)}`, run.workflow)),
        fact("version", h("span", {class: "mono"}, run.version)),
        fact("started", stamp(run.started_at || run.created_at)),
        fact("ended", stamp(run.ended_at)),
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
  if (!selected) {
    const own = detail.steps.filter((st) => st.key !== REPLAY);
    selected = (own.find((st) => st.waiting_for) || own.find((st) => st.status === "failed"))?.key || null;
  }
  const again = workflow ? h("section", {class: "card again"},
    h("details", {"data-again": ""}, h("summary", {}, "New run with this input"),
      startForm(workflow, {input: detail.run.input, title: `Start a new ${workflow.name} run`}))) : null;
  root.append(
    header,
    notice,
    h("div", {class: "run-body"},
      h("section", {class: "card"}, h("h2", {}, workflow?.kind === "asl" ? "States" : "Steps"), graphBox),
      h("section", {class: "card"}, panelBox)),
    h("section", {class: "card"}, h("h2", {}, "Waterfall"), waterfallBox),
    h("section", {class: "card"}, h("h2", {}, "Timeline"), table.element, moreTimeline),
    h("section", {class: "card"}, h("h2", {}, "Events received"), received.element),
    ...(again ? [again] : []),
  );
  draw();
  const sized = new ResizeObserver(() => drawWaterfall());
  sized.observe(waterfallBox);
  follow();
  return () => { left = true; clearTimeout(timer); sized.disconnect(); };
}

async function workflowOf(run) {
  try {
    return await get(`/workflows/${enc(run.workflow)}?version=${enc(run.version)}`);
  } catch {
    return null; // a workflow no longer deployed: the graph comes from the steps alone
  }
}
