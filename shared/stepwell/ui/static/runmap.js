// The path a run took on its workflow's graph: every step (or state) of the definition, each
// coloured by the run's records of it, the ones never reached greyed. A code-first run's graph
// is the steps its code reached (its own replay, $workflow, is Stepwell's machinery, not a
// step). A Step Functions machine's Choice, Pass, Succeed and Fail states keep no record: one
// is taken as passed when the run went into it and out of it (or ended there).
import {TERMINAL} from "./dom.js";

export const REPLAY = "$workflow";
const PASSIVE = new Set(["Choice", "Pass", "Succeed", "Fail"]);
const OPEN_ORDER = ["waiting", "retrying", "running", "pending"];

/** {nodes, edges, nodeOf(key)} for graph.js, from the workflow (GET /workflows/{name}, or
 *  null when it is no longer deployed) and the run (GET /runs/{id}). */
export function runGraph(workflow, detail) {
  const steps = detail.steps.filter((st) => st.key !== REPLAY);
  const definition = workflow?.graph?.nodes?.length ? workflow.graph : null;
  if (!definition) return reached(steps);
  const asl = workflow.kind === "asl";
  const owner = new Map();
  for (const node of definition.nodes) for (const name of node.names) owner.set(name, node.id);
  const nodeOf = (key) => owner.get(asl ? key.split(".")[0].replace(/~\d+$/, "") : key) || null;
  const records = new Map(definition.nodes.map((n) => [n.id, []]));
  for (const st of steps) {
    const id = nodeOf(st.key);
    if (id) records.get(id).push(st);
  }
  const open = !TERMINAL.includes(detail.run.status);
  const specs = workflow.definition?.steps || {};
  const nodes = definition.nodes.map((n) => {
    const mine = records.get(n.id);
    const status = mine.length ? statusOf(mine) : open && !asl ? "pending" : "unreached";
    return {id: n.id, label: n.label, kind: n.kind, status, records: mine.map((r) => r.key),
      note: mine.length ? noteOf(n, mine, specs[n.id]) : unreachedNote(n.kind, status),
      progress: progressOf(n, mine, specs[n.id])};
  });
  if (asl) passThrough(nodes, definition.edges, detail.run);
  return {nodes, edges: definition.edges, nodeOf};
}

/** The steps a code-first run reached, with the edges its code read (or a run whose
 *  workflow is gone: its records alone). */
function reached(steps) {
  const nodes = steps.map((st) => ({
    id: st.key, label: st.name || st.key, kind: st.kind || "task", status: st.status, records: [st.key],
    note: noteOf({kind: st.kind}, [st], null), progress: progressOf({kind: st.kind}, [st], null),
  }));
  const edges = steps.flatMap((st) => (st.after || []).map((from) => ({source: from, target: st.key, kind: "next"})));
  return {nodes, edges, nodeOf: (key) => (steps.some((st) => st.key === key) ? key : null)};
}

/** A state's status from its records: an open one's, else the latest ended one's. */
function statusOf(records) {
  const open = records.filter((r) => !TERMINAL.includes(r.status));
  if (open.length) return OPEN_ORDER.find((s) => open.some((r) => r.status === s)) || open[0].status;
  const last = [...records].sort((a, b) => String(a.ended_at).localeCompare(String(b.ended_at))).pop();
  return last.status;
}

/** The record a click on a node opens: one that is open, else the newest. */
export function currentRecord(keys, steps) {
  const mine = steps.filter((st) => keys.includes(st.key));
  return (mine.find((st) => !TERMINAL.includes(st.status)) ||
    [...mine].sort((a, b) => String(a.started_at).localeCompare(String(b.started_at))).pop())?.key || null;
}

function passThrough(nodes, edges, run) {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const flows = edges.filter((e) => e.kind !== "catch");
  let changed = true;
  while (changed) {
    changed = false;
    for (const node of nodes) {
      if (!PASSIVE.has(node.kind) || node.records.length || node.status !== "unreached") continue;
      const went = (e) => byId.get(e.source)?.status !== "unreached";
      const into = edges.some((e) => e.target === node.id && went(e));
      const outOf = flows.some((e) => e.source === node.id && byId.get(e.target)?.status !== "unreached");
      const endedHere = node.kind === "Succeed" ? run.status === "succeeded"
        : node.kind === "Fail" ? run.status === "failed" && (run.error?.type ?? null) === (node.error ?? null) : false;
      if (into && (outOf || endedHere)) {
        node.status = node.kind === "Fail" ? "failed" : "succeeded";
        node.note = `${node.kind} · ${node.kind === "Fail" ? "ended here" : "passed"}`;
        changed = true;
      }
    }
  }
}

function unreachedNote(kind, status) {
  const where = status === "pending" ? "pending" : "not reached";
  return ["task", "Task"].includes(kind) ? where : `${kind} · ${where}`;
}

function noteOf(node, records, spec) {
  const last = records[records.length - 1];
  const open = records.find((r) => r.waiting_for && r.waiting_for !== "steps");
  if (open) return `waiting for ${open.waiting_for}`;
  if (records.length > 1 && !(spec?.for_each)) return `${statusOf(records)} · ${records.length} records`;
  if (last.attempt > 1) return `${last.status} · attempt ${last.attempt}`;
  const kind = spec?.type || node.kind;
  return kind && !["task", "Task"].includes(kind) ? `${last.status} · ${kind}` : last.status;
}

function progressOf(node, records, spec) {
  const st = records.find((r) => r.items_total !== null && r.items_total !== undefined);
  if (!st && !spec?.for_each && node.kind !== "for_each") return null;
  if (!st) return {done: 0, failed: 0, running: 0, total: null};
  const total = st.items_total;
  const done = st.children_succeeded || 0, failed = st.children_failed || 0;
  const running = TERMINAL.includes(st.status) ? 0 : Math.max(0, Math.min(total - done - failed, spec?.max_parallel || total));
  return {done, failed, running, total};
}
