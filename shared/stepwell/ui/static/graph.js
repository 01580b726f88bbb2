// A run's (or a workflow's) steps as an SVG graph, laid out in layers by depth: a step sits
// one column right of the deepest step it waits for. Nodes are coloured by status; a for_each
// step is one node with its progress (done / failed / running of N).
import {s} from "./dom.js";

const W = 200, H = 52, GAP_X = 56, GAP_Y = 16, GAP_LAYER = 30, PAD = 12;

/** nodes: [{id, label, status, progress?: {done, failed, running, total}, note?}],
 *  upstream: {id: [ids it waits for]}, onSelect(id); layers run down the page when
 *  ``vertical``, else across. */
export function graph(nodes, upstream, onSelect, selected, vertical = false) {
  const known = new Set(nodes.map((n) => n.id));
  const depth = {};
  const visiting = new Set();
  const depthOf = (id) => {
    if (id in depth) return depth[id];
    if (visiting.has(id)) return 0; // a cycle cannot happen in a valid DAG; stay finite anyway
    visiting.add(id);
    const before = (upstream[id] || []).filter((u) => known.has(u));
    depth[id] = before.length ? 1 + Math.max(...before.map(depthOf)) : 0;
    visiting.delete(id);
    return depth[id];
  };
  const columns = [];
  for (const node of nodes) (columns[depthOf(node.id)] ||= []).push(node);
  const at = {};
  const widest = Math.max(1, ...columns.map((c) => c.length));
  columns.forEach((column, layer) => column.forEach((node, i) => {
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
  svg.append(s("defs", {}, s("marker", {
    id: "arrow", viewBox: "0 0 8 8", refX: 8, refY: 4, markerWidth: 7, markerHeight: 7,
    orient: "auto-start-reverse",
  }, s("path", {d: "M0,0 L8,4 L0,8 z", class: "arrowhead"}))));
  for (const node of nodes) {
    for (const from of upstream[node.id] || []) {
      if (!at[from]) continue;
      const a = at[from], b = at[node.id];
      let d;
      if (vertical) {
        const x1 = a.x + W / 2, y1 = a.y + H, x2 = b.x + W / 2, y2 = b.y - 2, mid = (y1 + y2) / 2;
        d = `M${x1},${y1} C${x1},${mid} ${x2},${mid} ${x2},${y2}`;
      } else {
        const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x - 2, y2 = b.y + H / 2, mid = (x1 + x2) / 2;
        d = `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
      }
      svg.append(s("path", {
        class: "edge", d,
        "marker-end": "url(#arrow)",
      }));
    }
  }
  for (const node of nodes) svg.append(box(node, at[node.id], onSelect, node.id === selected));
  return svg;
}

function box(node, {x, y}, onSelect, chosen) {
  const g = s("g", {
    class: `node st-${node.status}${chosen ? " chosen" : ""}`, "data-step": node.id,
    "data-status": node.status, tabindex: 0, role: "button", transform: `translate(${x},${y})`,
  });
  g.append(s("title", {}, `${node.id}: ${node.status}`));
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
