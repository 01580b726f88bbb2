// The dashboard: a hash router over five pages. Each page renders into <main> and returns a
// function that stops what it started (polling) when the page is left.
import {h, ago} from "./dom.js";
import {runsPage} from "./runs.js";
import {runPage} from "./run.js";
import {workflowsPage, workflowPage} from "./workflows.js";
import {outboxPage} from "./outbox.js";
import {inboxPage} from "./inbox.js";
import {eventsPage} from "./events.js";

const ROUTES = [
  [/^\/runs$/, runsPage, "runs"],
  [/^\/runs\/([^/]+)$/, runPage, "runs"],
  [/^\/workflows$/, workflowsPage, "workflows"],
  [/^\/workflows\/([^/]+)$/, workflowPage, "workflows"],
  [/^\/outbox$/, outboxPage, "outbox"],
  [/^\/inbox$/, inboxPage, "inbox"],
  [/^\/events$/, eventsPage, "events"],
];

let leave = null;
let generation = 0;

async function route() {
  if (leave) leave();
  leave = null;
  const mine = ++generation;
  const [path, search] = (location.hash.slice(1) || "/runs").split("?");
  const root = document.getElementById("app");
  // The page being left stays in sight until the next one is ready, but no longer answers:
  // a click on it would act on what the person navigated away from.
  for (const old of root.children) {
    old.inert = true;
    old.classList.add("leaving");
  }
  const params = new URLSearchParams(search || "");
  for (const [pattern, page, section] of ROUTES) {
    const found = pattern.exec(path);
    if (!found) continue;
    for (const a of document.querySelectorAll("[data-nav]")) {
      a.classList.toggle("active", a.dataset.nav === section);
    }
    // A page renders into a view of its own, shown only if no other page was asked for
    // meanwhile (its loads are asynchronous).
    const view = h("div", {class: "view"});
    const started = performance.now();
    let stop = null;
    try {
      stop = await page(view, found.slice(1).map(decodeURIComponent), params);
    } catch (error) {
      view.replaceChildren(h("p", {class: "error"}, error.message));
    }
    if (mine !== generation) {
      if (stop) stop();
      return;
    }
    leave = stop;
    root.replaceChildren(view);
    document.body.dataset.loadedMs = String(Math.round(performance.now() - started));
    return;
  }
  root.replaceChildren(h("p", {class: "error"}, `No page at ${path}.`));
}

/** Relative times ("3 min ago") stay true while a page is open. */
function retime() {
  for (const el of document.querySelectorAll("time[datetime]")) el.textContent = ago(el.getAttribute("datetime"));
}

window.addEventListener("hashchange", route);
setInterval(retime, 10_000);
route();
