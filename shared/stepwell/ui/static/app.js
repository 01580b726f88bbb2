// The dashboard: a hash router over four pages. Each page renders into <main> and returns a
// function that stops what it started (polling) when the page is left.
import {h} from "./dom.js";
import {runsPage} from "./runs.js";
import {runPage} from "./run.js";
import {workflowsPage, workflowPage} from "./workflows.js";

const ROUTES = [
  [/^\/runs$/, runsPage, "runs"],
  [/^\/runs\/([^/]+)$/, runPage, "runs"],
  [/^\/workflows$/, workflowsPage, "workflows"],
  [/^\/workflows\/([^/]+)$/, workflowPage, "workflows"],
];

let leave = null;

async function route() {
  if (leave) leave();
  leave = null;
  const [path, search] = (location.hash.slice(1) || "/runs").split("?");
  const root = document.getElementById("app");
  const params = new URLSearchParams(search || "");
  for (const [pattern, page, section] of ROUTES) {
    const found = pattern.exec(path);
    if (!found) continue;
    for (const a of document.querySelectorAll("[data-nav]")) {
      a.classList.toggle("active", a.dataset.nav === section);
    }
    root.replaceChildren();
    const started = performance.now();
    try {
      leave = await page(root, found.slice(1).map(decodeURIComponent), params);
    } catch (error) {
      root.replaceChildren(h("p", {class: "error"}, error.message));
    }
    document.body.dataset.loadedMs = String(Math.round(performance.now() - started));
    return;
  }
  root.replaceChildren(h("p", {class: "error"}, `No page at ${path}.`));
}

window.addEventListener("hashchange", route);
route();
