// A workflow's (or a run's) steps as an SVG graph, laid out in layers by depth: a step sits one
// layer after the deepest step that leads to it. Nodes are coloured by status (a step the run
// never reached is greyed); a for_each step is one node with its progress (done / failed /
// running of N). Edges that carry a failure (catch) or an undo (compensate) are drawn dashed,
// apart from the way a run goes.
import {s} from "./dom.js";

const W = 200, H = 52, GAP_X = 56, GAP_Y = 16, GAP_LAYER = 30, PAD = 12;
const ASIDE = new Set(["catch", "compensate"]);

/** nodes: [{id, label, status, progress?: {done, failed, running, total}, note?}];
 *  edges: [{source, target, kind}] (kind depends_on, next, choice, default, catch, compensate);
 *  onSelect(id); layers run down the page when ``vertical``, else across. */
export function graph(nodes, edges, onSelect, selected, vertical = false) {
  const known = new Set(nodes.map((n) => n.id));
  const inside = edges.filter((e) => known.has(e.source) && known.has(e.target));
  const back = loops(nodes, inside);
  const before = {};
  for (const edge of inside) {
    if (!back.has(edge)) (before[edge.target] ||= []).push(edge.source);
  }
  const depth = {};
  const depthOf = (id) => {
    if (!(id in depth)) {
      depth[id] = 0; // (the walk ignores loops: only a bug could bring it back here)
      const from = before[id] || [];
      depth[id] = from.length ? 1 + Math.max(...from.map(depthOf)) : 0;
    }
    return depth[id];
  };
  const columns = [];
  for (const node of nodes) (columns[depthOf(node.id)] ||= []).push(node);
  const at = {};
  const widest = Math.max(1, ...columns.map((c) => (c ? c.length : 0)));
  columns.forEach((column, layer) => (column || []).forEach((node, i) => {
    at[node.id] = vertical
      ? {x: PAD + i * (W + GAP_X), y: PAD + layer * (H + GAP_LAYER)}
      : {x: PAD + layer * (W + GAP_X), y: PAD + i * (H + GAP_Y)};
  }));
  const width = vertical ? PAD * 2 + widest * (W + GAP_X) - GAP_X : PAD * 2 + columns.length * (W + GAP_X) - GAP_X;
  const height = vertical ? PAD * 2 + columns.length * (H + GAP_LAYER) - GAP_LAYER : PAD * 2 + widest * (H + GAP_Y) - GAP_Y;
  const svg = s("svg", {
    class: "graph", viewBox: `0 0 ${Math.max(width, 1)} ${Math.max(height, 1)}`,
    width: Math.max(width, 1), height: Math.max(height, 1), role: "img", "aria-label": "steps",
  });
  svg.append(s("defs", {},
    marker("arrow", "arrowhead"), marker("arrow-catch", "arrowhead catch"), marker("arrow-compensate", "arrowhead compensate")));
  const reached = new Set(nodes.filter((n) => n.status !== "unreached" && n.status !== "idle").map((n) => n.id));
  for (const edge of edges) {
    const a = at[edge.source], b = at[edge.target];
    if (!a || !b) continue;
    const d = vertical ? down(a, b) : across(a, b);
    const aside = ASIDE.has(edge.kind);
    const taken = reached.has(edge.source) && reached.has(edge.target);
    const path = s("path", {
      class: `edge edge-${edge.kind}${taken ? " taken" : ""}`, d,
      "data-edge": `${edge.source}->${edge.target}`, "data-kind": edge.kind,
      "marker-end": `url(#${aside ? `arrow-${edge.kind}` : "arrow"})`,
    });
    path.append(s("title", {}, `${edge.source} → ${edge.target} (${edge.kind.replace("_", " ")})`));
    svg.append(path);
  }
  for (const node of nodes) svg.append(box(node, at[node.id], onSelect, node.id === selected));
  return svg;
}

/** The edges that go back to a step already on the way (a Choice's loop), found by a walk
 *  from the first steps: the layers follow the other edges. */
function loops(nodes, edges) {
  const out = {};
  for (const edge of edges) (out[edge.source] ||= []).push(edge);
  const state = {};
  const back = new Set();
  const visit = (id) => {
    state[id] = "walking";
    for (const edge of out[id] || []) {
      if (state[edge.target] === "walking") back.add(edge);
      else if (!state[edge.target]) visit(edge.target);
    }
    state[id] = "done";
  };
  for (const node of nodes) if (!state[node.id]) visit(node.id);
  return back;
}

function marker(id, cls) {
  return s("marker", {id, viewBox: "0 0 8 8", refX: 8, refY: 4, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse"},
    s("path", {d: "M0,0 L8,4 L0,8 z", class: cls}));
}

function down(a, b) {
  if (b.y <= a.y) return loop(a, b, true);
  const x1 = a.x + W / 2, y1 = a.y + H, x2 = b.x + W / 2, y2 = b.y - 2, mid = (y1 + y2) / 2;
  return `M${x1},${y1} C${x1},${mid} ${x2},${mid} ${x2},${y2}`;
}

function across(a, b) {
  if (b.x <= a.x) return loop(a, b, false);
  const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x - 2, y2 = b.y + H / 2, mid = (x1 + x2) / 2;
  return `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
}

/** An edge back to an earlier layer (a Choice's loop): around the side of the nodes. */
function loop(a, b, vertical) {
  if (vertical) {
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x + W + 2, y2 = b.y + H / 2, out = Math.max(x1, x2) + 36;
    return `M${x1},${y1} C${out},${y1} ${out},${y2} ${x2},${y2}`;
  }
  const x1 = a.x + W / 2, y1 = a.y + H, x2 = b.x + W / 2, y2 = b.y + H + 2, out = Math.max(y1, y2) + 30;
  return `M${x1},${y1} C${x1},${out} ${x2},${out} ${x2},${y2}`;
}

function box(node, {x, y}, onSelect, chosen) {
  const g = s("g", {
    class: `node st-${node.status}${chosen ? " chosen" : ""}`, "data-step": node.id,
    "data-status": node.status, tabindex: 0, role: "button", transform: `translate(${x},${y})`,
  });
  g.append(s("title", {}, `${node.id}: ${node.status === "unreached" ? "not reached" : node.status}`));
  g.append(s("rect", {width: W, height: H, rx: 8}));
  g.append(s("text", {x: 10, y: 20, class: "name"}, clip(node.label, 24)));
  const p = node.progress;
  if (p && p.total !== null && p.total !== undefined) {
    g.append(s("text", {x: 10, y: 36, class: "sub progress"},
      `${p.done}/${p.total} done · ${p.failed} failed · ${p.running} running`));
    const bar = W - 20, scale = p.total ? bar / p.total : 0;
    g.append(s("rect", {x: 10, y: 42, width: bar, height: 4, class: "bar-bg"}));
    g.append(s("rect", {x: 10, y: 42, width: p.done * scale, height: 4, class: "bar-done"}));
    g.append(s("rect", {x: 10 + p.done * scale, y: 42, width: p.failed * scale, height: 4, class: "bar-failed"}));
    g.append(s("rect", {x: 10 + (p.done + p.failed) * scale, y: 42, width: p.running * scale, height: 4, class: "bar-running"}));
  } else {
    g.append(s("text", {x: 10, y: 38, class: "sub"}, clip(node.note || node.status, 30)));
  }
  if (onSelect) {
    g.addEventListener("click", () => onSelect(node.id));
    g.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") onSelect(node.id); });
  }
  return g;
}

function clip(text, n) {
  return text.length > n ? text.slice(0, n - 1) + "…" : text;
}
