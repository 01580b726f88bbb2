// Workflows: the list, and one workflow's definition, versions, graph, triggers, recent runs
// and success rate, with a form that starts a run (its input checked in the browser first).
import {get, post, enc, ApiFailure} from "./api.js";
import {h, fact, badge, stamp, duration, elapsed, money, runLink, link, json, TERMINAL} from "./dom.js";
import {graph} from "./graph.js";
import {validate, skeleton} from "./schema.js";
import {refusal} from "./actions.js";

const RECENT = 20;

export async function workflowsPage(root) {
  const {workflows, broken} = await get("/workflows");
  root.append(
    h("h1", {}, "Workflows"),
    h("table", {class: "runs"},
      h("thead", {}, h("tr", {}, ["Workflow", "Description", "Kind", "Version", "Starts by"].map((t) => h("th", {}, t)))),
      h("tbody", {}, workflows.map((w) => h("tr", {"data-workflow": w.name},
        h("td", {}, link(`/workflows/${enc(w.name)}`, w.name)),
        h("td", {}, w.description || ""),
        h("td", {"data-kind": w.kind}, kindOf(w)),
        h("td", {class: "mono"}, w.version),
        h("td", {}, starts(w.triggers)))))),
  );
  if (broken.length) {
    root.append(h("section", {class: "card"}, h("h2", {}, "Files with problems"),
      broken.map((b) => h("div", {}, h("h3", {}, b.name), h("pre", {class: "error-box"}, b.problems.join("\n"))))));
  }
  return null;
}

/** What a workflow is written as: YAML steps, code, or a Step Functions machine. */
function kindOf(workflow) {
  if (workflow.kind === "asl") return "Step Functions";
  if (workflow.kind === "code") return "code-first";
  return `YAML · ${workflow.steps} step${workflow.steps === 1 ? "" : "s"}`;
}

function starts(triggers) {
  const out = [];
  if (triggers.http) out.push("HTTP");
  if (triggers.events.length) out.push(`${triggers.events.length} event rule${triggers.events.length > 1 ? "s" : ""}`);
  out.push(...triggers.schedules);
  return out.join(", ") || "—";
}

export async function workflowPage(root, [name]) {
  const workflow = await get(`/workflows/${enc(name)}`);
  const recent = await get(`/runs?workflow=${enc(name)}&limit=${RECENT}`);
  const ended = recent.runs.filter((r) => TERMINAL.includes(r.status));
  const succeeded = ended.filter((r) => r.status === "succeeded").length;
  const rate = ended.length ? `${Math.round((100 * succeeded) / ended.length)}% of the last ${ended.length} ended runs` : "no ended runs yet";
  const nodes = workflow.graph.nodes.map((n) => ({id: n.id, label: n.label, status: "idle", note: n.kind}));
  const parts = [
    h("h1", {}, workflow.name),
    workflow.description ? h("p", {}, workflow.description) : null,
    h("dl", {class: "facts wide"},
      fact("kind", h("span", {"data-kind": workflow.kind}, kindOf(workflow))),
      fact("version", h("span", {class: "mono"}, workflow.version)),
      fact("versions", workflow.versions.map((v) => h("span", {class: "mono label"}, v))),
      fact("starts by", starts(workflow.triggers)),
      fact("success rate", h("span", {id: "success-rate"}, rate)),
      workflow.code ? fact("code", h("span", {class: "mono"}, workflow.code)) : null),
    nodes.length ? h("section", {class: "card"}, h("h2", {}, workflow.kind === "asl" ? "States" : "Steps"),
      h("div", {class: "graph-box"}, graph(nodes, workflow.graph.edges))) : null,
    startForm(workflow),
    h("section", {class: "card"}, h("h2", {}, "Recent runs"),
      h("table", {class: "runs small"},
        h("thead", {}, h("tr", {}, ["Run", "Status", "Started", "Duration", "Cost"].map((t) => h("th", {}, t)))),
        h("tbody", {}, recent.runs.map((r) => h("tr", {}, h("td", {}, runLink(r.id)), h("td", {}, badge(r.status)),
          h("td", {}, stamp(r.started_at || r.created_at)), h("td", {}, duration(elapsed(r))), h("td", {}, money(r.usage?.cost_usd))))))),
    h("section", {class: "card"}, h("details", {}, h("summary", {}, "Definition"), json(workflow.definition))),
  ];
  root.append(...parts.filter(Boolean));
  return null;
}

/** A form that starts a run of ``workflow``, its input checked in the browser first; the input
 *  starts as ``input`` when given (a run's own, to start another like it), else as the schema's
 *  shape. */
export function startForm(workflow, {input: given, title = "Start a run"} = {}) {
  const input = h("textarea", {name: "input", rows: 10, spellcheck: "false", class: "mono"});
  // The input given (a run's, to start it again), else the workflow's example input when it
  // has one, else the shape its input_schema asks for.
  const example = given === undefined ? workflow.example_input ?? skeleton(workflow.input_schema) : given;
  input.value = JSON.stringify(example, null, 2);
  const labels = h("input", {name: "labels", placeholder: "labels: team=shop, env=dev"});
  const dry = h("input", {type: "checkbox", name: "dry_run"});
  // Empty starts the run now; a time (the browser's own zone) leaves it scheduled until then.
  const startAt = h("input", {type: "datetime-local", name: "start_at"});
  // Empty leaves the workflow's own priority; a number places a queued run (higher first).
  const priority = h("input", {type: "number", name: "priority", step: "1", placeholder: "priority"});
  const problems = h("div", {class: "result", role: "alert", id: "start-result"});
  const submit = h("button", {class: "primary", "data-action": "start"}, "Start run");

  async function start(event) {
    event.preventDefault();
    problems.className = "result";
    problems.replaceChildren();
    let value;
    try {
      value = input.value.trim() ? JSON.parse(input.value) : null;
    } catch (error) {
      return refuse([h("span", {}, `The input is not valid JSON: ${error.message}`)]);
    }
    const found = workflow.input_schema ? validate(workflow.input_schema, value) : [];
    if (found.length) {
      return refuse([h("span", {}, `The input does not match ${workflow.name}'s input_schema (checked here, not sent):`),
        h("ul", {class: "details"}, found.map((p) => h("li", {}, `${p.path}: ${p.message}`)))]);
    }
    const body = {input: value, dry_run: dry.checked, labels: parseLabels(labels.value)};
    if (startAt.value) body.start_at = new Date(startAt.value).toISOString();
    if (priority.value !== "") body.priority = Number(priority.value);
    submit.disabled = true;
    try {
      const started = await post(`/workflows/${enc(workflow.name)}/runs`, body);
      location.hash = `#/runs/${enc(started.run_id)}`;
    } catch (error) {
      refuse(refusal(error instanceof ApiFailure ? error : new Error(error.message)));
    } finally {
      submit.disabled = false;
    }
  }

  function refuse(children) {
    problems.className = "result error";
    problems.replaceChildren(...children);
  }

  return h("section", {class: "card"}, h("h2", {}, title),
    h("form", {class: "start", onsubmit: start},
      h("label", {class: "field"}, h("span", {}, "input (JSON)"), input),
      labels, h("label", {class: "inline"}, "start at ", startAt),
      h("label", {class: "inline"}, "priority ", priority),
      h("label", {class: "inline"}, dry, " dry run"), submit, problems));
}

function parseLabels(text) {
  const out = {};
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const [key, ...rest] = part.split("=");
    out[key.trim()] = rest.join("=").trim();
  }
  return out;
}
