// One step of a run: what it is, why it waits, its input, output and error (payloads over
// 64 KB are fetched only when asked for), its log lines, a fan-out's children by status a page
// at a time, and what an operator can do to it.
import {get, post, enc} from "./api.js";
import {h, fact, badge, when, stamp, duration, elapsed, json, size, runLink, money, tokens, TERMINAL} from "./dom.js";
import {control, jsonField, textField, refusal} from "./actions.js";

const CHILDREN_PAGE = 50;
const CHILD_FILTERS = ["all", "failed", "running", "succeeded", "pending"];

export function stepPanel({run, step, spec, refresh, notify, siblings = [], onSelect}) {
  const panel = h("section", {class: "step-panel", "data-panel": step.key});
  const kind = spec?.type || step.kind || (spec?.for_each ? "for_each" : "task");
  panel.append(
    h("h2", {}, step.key, " ", badge(step.status)),
    facts(step, spec?.for_each ? `${kind} · for_each` : kind, spec?.description),
  );
  if (siblings.length > 1) {
    // A state that ran several times (a loop), or a Map's items: each has a record.
    panel.append(h("p", {class: "records"}, "Records of this state: ", siblings.map((key) =>
      h("button", {type: "button", class: key === step.key ? "link chosen" : "link", "data-record": key, onclick: () => onSelect(key)}, key))));
  }
  const why = waiting(step);
  if (why) panel.append(h("p", {class: "why", "data-why": step.key}, why));
  if (step.decisions?.length) {
    panel.append(h("h3", {}, "Decisions"), h("ul", {class: "decisions"}, step.decisions.map((d) =>
      h("li", {}, `${d.decision} by ${d.approver}${d.operator ? " (operator)" : ""}`,
        d.comment ? `: ${d.comment}` : "", h("span", {class: "muted"}, ` ${when(d.at)}`)))));
  }
  const actions = stepActions(run, step, refresh, notify);
  if (actions.length) panel.append(h("h3", {}, "Actions"), h("div", {class: "actions"}, actions));
  panel.append(...payloads(step), logs(run, step));
  if (spec?.for_each || step.items_total !== null && step.items_total !== undefined) {
    panel.append(children(run, step));
  }
  return panel;
}

function facts(step, kind, description) {
  return h("dl", {class: "facts"},
    fact("kind", kind),
    description ? fact("what", description) : null,
    fact("attempt", step.attempt || "—"),
    fact("started", stamp(step.started_at)),
    fact("ended", stamp(step.ended_at)),
    fact("took", step.started_at ? duration(elapsed(step)) : "—"),
    step.waiting_for ? fact("waits for", step.waiting_for) : null,
    step.due_at ? fact("due", stamp(step.due_at)) : null,
    step.child_run_id ? fact("child run", runLink(step.child_run_id)) : null,
    step.copied_from ? fact("copied from", runLink(step.copied_from)) : null,
    step.usage && (step.usage.cost_usd || step.usage.input_tokens)
      ? fact("usage", `${money(step.usage.cost_usd)} · ${tokens(step.usage)} tokens`) : null,
  );
}

/** A failure in a line; one with no name (a Step Functions Fail state without Error) says so. */
function errorText(error) {
  const message = error.message || "";
  if (error.type == null) return message ? `no error name: ${message}` : "no error name, no cause";
  return `${error.type}: ${message}`.trim();
}

/** Why a step is where it is, in a sentence: what it waits for and until when, the failure
 *  its retry follows, how long a running attempt has before it counts as lost. */
export function waiting(step) {
  const until = (iso) => (iso ? ["; due ", stamp(iso)] : []);
  const failure = step.error ? errorText(step.error) : null;
  switch (step.status) {
    case "retrying":
      return [`Attempt ${step.attempt} failed (${failure || "no error given"}); attempt ${step.attempt + 1} starts `,
        step.due_at ? stamp(step.due_at) : "soon", "."];
    case "waiting": {
      if (step.waiting_for === "event" && step.awaits?.length) return awaiting(step);
      const what = {approval: "an approval", input: "a person to fill in its form", callback: "a callback", delay: "its delay to end",
        child_run: "its child run", poll: "its next check", steps: "the steps its code reached"}[step.waiting_for] || step.waiting_for;
      const beat = step.heartbeat_due ? ["; its next heartbeat is due ", stamp(step.heartbeat_due)] : [];
      return [`Attempt ${step.attempt || 1} waits for ${what}`, ...until(step.due_at), ...beat, "."];
    }
    case "running": {
      const since = step.attempt_started_at ? [" since ", stamp(step.attempt_started_at)] : [];
      const lease = step.lease_expires_at
        ? ["; with no result its lease runs out ", stamp(step.lease_expires_at), " and it is sent again"] : [];
      const before = step.attempt > 1 && failure ? [` (attempt ${step.attempt - 1}: ${failure})`] : [];
      return [`Attempt ${step.attempt} is running`, ...since, ...before, ...lease, "."];
    }
    case "pending":
      return ["Waits for the steps before it."];
    default:
      return null;
  }
}

/** Input, output and error; a payload left out of the view for its size is a button. */
export function payloads(record) {
  const out = [];
  for (const part of ["input", "output"]) {
    const url = record[`${part}_url`];
    if (url) {
      const box = h("div", {class: "payload", "data-payload": part});
      const load = h("button", {type: "button", "data-load": part, onclick: async () => {
        load.disabled = true;
        try {
          box.replaceChildren(json(await get(url)));
        } catch (error) {
          box.replaceChildren(h("p", {class: "error"}, error.message));
        }
      }}, `Load ${part} (${size(record[`${part}_bytes`] || 0)})`);
      box.append(load);
      out.push(h("h3", {}, part), box);
    } else if (record[part] !== null && record[part] !== undefined) {
      out.push(h("h3", {}, part), h("div", {class: "payload", "data-payload": part}, json(record[part])));
    }
  }
  if (record.error) out.push(h("h3", {}, "error"), h("div", {class: "payload error-box", "data-payload": "error"}, json(record.error)));
  return out;
}

/** The function's log lines of an attempt (asked for when wanted): beside the step locally,
 *  a link to CloudWatch Logs Insights when deployed. */
function logs(run, step) {
  const box = h("div", {class: "logs", "data-logs": step.key});
  if (!step.attempt) return box;
  const attempts = Array.from({length: step.attempt}, (_, i) => step.attempt - i);
  const which = h("select", {name: "attempt", "aria-label": "attempt"}, attempts.map((n) => h("option", {value: n}, `attempt ${n}`)));
  const out = h("div", {class: "log-lines"});
  const show = h("button", {type: "button", "data-action": "logs", onclick: async () => {
    show.disabled = true;
    try {
      const found = await get(`/runs/${enc(run.id)}/steps/${enc(step.key)}/logs?attempt=${which.value}`);
      out.replaceChildren(...logView(found));
    } catch (error) {
      out.replaceChildren(...refusal(error));
    } finally {
      show.disabled = false;
    }
  }}, "Show logs");
  box.append(h("h3", {}, "logs"), h("div", {class: "action"}, attempts.length > 1 ? which : null, show), out);
  return box;
}

function logView(found) {
  const out = [];
  if (found.lines) {
    out.push(found.lines.length
      ? h("pre", {class: "log"}, found.lines.map((line) => h("span", {class: `line lv-${line.level.toLowerCase()}`},
        `${when(line.at).slice(11)} ${line.level.padEnd(5)} ${line.source ? `${line.source}  ` : ""}${line.message}\n`)))
      : h("p", {class: "muted"}, `No lines logged by attempt ${found.attempt}.`));
  }
  if (found.link) {
    out.push(h("p", {}, h("a", {href: found.link, target: "_blank", rel: "noopener noreferrer", "data-link": "insights"},
      `Open attempt ${found.attempt}'s lines in CloudWatch Logs Insights`)));
  }
  out.push(h("p", {class: "muted small"}, `From ${found.where}.`));
  return out;
}

function stepActions(run, step, refresh, notify) {
  const base = `/runs/${enc(run.id)}/steps/${enc(step.key)}`;
  const ended = TERMINAL.includes(run.status);
  // The panel is drawn again once the step changed: the answer also goes to the run's notice.
  const done = async (answer) => {
    notify(`${answer.message} (run ${answer.status}${answer.step_status ? `, step ${answer.step_status}` : ""})`);
    await refresh();
    return answer.message || "done";
  };
  const out = [];
  if (step.waiting_for === "approval" && !ended) {
    const comment = textField("comment", "comment (noted on the timeline)");
    out.push(h("div", {class: "action-group"}, comment.element,
      control({name: "approve", label: "Approve", question: `Approve ${step.key} as an operator?`,
        perform: async () => done(await post(`${base}/decision`, {approved: true, comment: comment.value()}))}),
      control({name: "reject", label: "Reject", danger: true, question: `Reject ${step.key}?`,
        perform: async () => done(await post(`${base}/decision`, {approved: false, comment: comment.value()}))})));
  }
  if (step.waiting_for === "callback" && !ended) {
    const output = jsonField("output", "output JSON (success)");
    const failure = textField("error", "ErrorType: message (failure)");
    out.push(h("div", {class: "action-group"}, output.element,
      control({name: "callback-success", label: "Answer success", question: `Complete ${step.key}?`,
        perform: async () => done(await post(`${base}/callback`, {status: "success", output: output.value()}))}),
      failure.element,
      control({name: "callback-failure", label: "Answer failure", danger: true, question: `Fail ${step.key}?`,
        perform: async () => {
          const [type, ...rest] = (failure.value() || "CallbackFailed").split(":");
          const error = {type: type.trim() || "CallbackFailed", message: rest.join(":").trim()};
          return done(await post(`${base}/callback`, {status: "failure", error}));
        }})));
  }
  if (step.status === "failed" && run.status === "failed") {
    const reason = textField("reason", "reason (optional)");
    out.push(h("div", {class: "action-group"}, reason.element,
      control({name: "retry", label: "Retry step", question: `Start a new attempt of ${step.key} now?`,
        perform: async () => done(await post(`${base}/retry`, {reason: reason.value()}))})));
  }
  if (!ended && !TERMINAL.includes(step.status) && step.status !== "pending") out.push(skips(base, step, done));
  if (!step.key.includes("[") && !step.key.endsWith(":compensate")) out.push(rerun(run, step.key, notify));
  return out;
}

/** Skip, after the API said which steps after it the skip skips too; beside it, skip with an
 *  output (the step succeeds with it, and what follows runs). */
function skips(base, step, done) {
  const reason = textField("skip-reason", "reason (optional)");
  const output = jsonField("skip-output", "output JSON for the steps after it");
  const preview = (body) => async () => {
    const said = await post(`${base}/skip`, {...body(), dry_run: true});
    return h("span", {"data-skips": said.skips.join(",")}, `${said.message[0].toUpperCase()}${said.message.slice(1)}.`);
  };
  const send = (body) => async () => done(await post(`${base}/skip`, {...body(), reason: reason.value()}));
  const withOutput = () => {
    const value = output.value();
    if (value === undefined) throw new Error("give the output the steps after it will get (JSON)");
    return {output: value};
  };
  return h("div", {class: "action-group skip"}, reason.element,
    h("div", {class: "side-by-side"},
      h("div", {}, control({name: "skip", label: "Skip step", danger: true, question: preview(() => ({})), perform: send(() => ({}))})),
      h("div", {}, output.element,
        control({name: "skip-output", label: "Skip with an output (run what follows)", question: preview(withOutput), perform: send(withOutput)}))));
}

function rerun(run, from, notify) {
  const input = jsonField("rerun-input", "new input JSON (optional: the run's own otherwise)");
  const dry = h("input", {type: "checkbox", name: "dry_run"});
  const version = h("select", {name: "version"},
    h("option", {value: "original"}, "its own version"), h("option", {value: "latest"}, "the deployed version"));
  return h("div", {class: "action-group"}, input.element,
    h("label", {class: "inline"}, dry, " dry run"), version,
    control({name: "rerun", label: `Rerun from ${from}`, question: `Start a new run from ${from}?`,
      perform: async () => {
        const body = {from_step: from, dry_run: dry.checked, version: version.value};
        const value = input.value();
        if (value !== undefined) body.input = value;
        const started = await post(`/runs/${enc(run.id)}/rerun`, body);
        notify(h("span", {}, `rerun from ${from} started: `, runLink(started.run_id)));
        return h("span", {}, "started ", runLink(started.run_id));
      }}));
}

/** A fan-out's children, a page at a time and only when asked for, by status; a child opens
 *  with its input, output, error, attempts, why it waits and its logs. */
function children(run, step) {
  const box = h("div", {class: "children", "data-children": step.key});
  const body = h("tbody");
  const note = h("p", {class: "muted small", role: "status"});
  const more = h("button", {type: "button", "data-more": step.key}, "Show children");
  const detail = h("div", {class: "child-detail"});
  let filter = "all";
  let cursor = null;
  const chips = h("div", {class: "chips", role: "group", "aria-label": "status"}, CHILD_FILTERS.map((name) =>
    h("button", {type: "button", class: name === filter ? "chip chosen" : "chip", "data-filter": name, onclick: () => choose(name)}, name)));

  function choose(name) {
    filter = name;
    for (const chip of chips.children) chip.classList.toggle("chosen", chip.dataset.filter === name);
    body.replaceChildren();
    detail.replaceChildren();
    cursor = null;
    load();
  }

  async function load() {
    more.disabled = true;
    try {
      const status = filter === "all" ? "" : `&status=${filter}`;
      const at = cursor ? `&cursor=${cursor}` : "";
      const page = await get(`/runs/${enc(run.id)}/steps/${enc(step.key)}/children?limit=${CHILDREN_PAGE}${status}${at}`);
      for (const child of page.children) body.append(row(child));
      cursor = page.cursor;
      const shown = body.children.length;
      note.textContent = filter === "all" ? `${shown} of ${page.items_total ?? "?"} shown`
        : `${shown} ${filter} shown` + (cursor ? ` (looked through ${cursor} of ${page.items_total})` : "");
      more.textContent = filter === "all" ? "More children" : "Look further";
      more.hidden = !cursor;
    } catch (error) {
      note.replaceChildren(...refusal(error));
    } finally {
      more.disabled = false;
    }
  }

  function row(child) {
    return h("tr", {"data-child": child.key, "data-status": child.status, class: "clickable", onclick: (e) => {
      for (const tr of body.children) tr.classList.toggle("chosen", tr === e.currentTarget);
      detail.replaceChildren(h("h4", {}, child.key, " ", badge(child.status)), facts(child, "child"),
        ...[waiting(child)].filter(Boolean).map((why) => h("p", {class: "why"}, why)),
        ...payloads(child), logs(run, child));
    }}, h("td", {class: "mono"}, child.key), h("td", {}, badge(child.status)),
    h("td", {}, child.attempt || "—"), h("td", {}, child.started_at ? duration(elapsed(child)) : "—"),
    h("td", {class: "small"}, child.error ? child.error.type ?? "no error name" : ""));
  }

  more.addEventListener("click", load);
  const total = step.items_total ?? "?";
  box.append(h("h3", {}, `Children (${total}: ${step.children_succeeded || 0} succeeded, ${step.children_failed || 0} failed)`),
    chips,
    h("table", {class: "small"}, h("thead", {}, h("tr", {}, ["child", "status", "attempt", "took", "error"].map((t) => h("th", {}, t)))), body),
    note, more, detail);
  return box;
}

/** What an event wait waits for: each kind of event, the value it must carry, its deadline. */
function awaiting(step) {
  const kinds = step.awaits.map((a, i) => h("span", {class: "awaits", "data-awaits": i},
    i ? " or " : "", h("b", {}, `${a.source} ${a.detail_type}`), ` with ${a.event} = `, h("code", {}, a.equals)));
  const deadline = step.timeout_at ? ["; deadline ", stamp(step.timeout_at)] : [];
  return [`Attempt ${step.attempt || 1} waits for an event: `, ...kinds, ...deadline, "."];
}
