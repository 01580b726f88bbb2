// One step of a run: what it is, its input, output and error (payloads over 64 KB are fetched
// only when asked for), a for_each's children a page at a time, and what an operator can do.
import {get, post, enc} from "./api.js";
import {h, fact, badge, when, duration, elapsed, json, size, runLink, money, tokens, TERMINAL} from "./dom.js";
import {control, jsonField, textField} from "./actions.js";

const CHILDREN_PAGE = 50;

export function stepPanel({run, step, spec, refresh, notify}) {
  const panel = h("section", {class: "step-panel", "data-panel": step.key});
  const kind = spec?.type || step.kind || (spec?.for_each ? "for_each" : "task");
  panel.append(
    h("h2", {}, step.key, " ", badge(step.status)),
    h("dl", {class: "facts"},
      fact("kind", spec?.for_each ? `${kind} · for_each` : kind),
      spec?.description ? fact("what", spec.description) : null,
      fact("attempt", step.attempt || "—"),
      fact("started", when(step.started_at)),
      fact("ended", when(step.ended_at)),
      fact("took", step.started_at ? duration(elapsed(step)) : "—"),
      step.waiting_for ? fact("waits for", step.waiting_for) : null,
      step.due_at ? fact("due", when(step.due_at)) : null,
      step.child_run_id ? fact("child run", runLink(step.child_run_id)) : null,
      step.copied_from ? fact("copied from", runLink(step.copied_from)) : null,
      step.usage && (step.usage.cost_usd || step.usage.input_tokens)
        ? fact("usage", `${money(step.usage.cost_usd)} · ${tokens(step.usage)} tokens`) : null,
    ),
  );
  if (step.decisions?.length) {
    panel.append(h("h3", {}, "Decisions"), h("ul", {class: "decisions"}, step.decisions.map((d) =>
      h("li", {}, `${d.decision} by ${d.approver}${d.operator ? " (operator)" : ""}`,
        d.comment ? `: ${d.comment}` : "", h("span", {class: "muted"}, ` ${when(d.at)}`)))));
  }
  const actions = stepActions(run, step, refresh, notify);
  if (actions.length) panel.append(h("h3", {}, "Actions"), h("div", {class: "actions"}, actions));
  panel.append(...payloads(step));
  if (spec?.for_each || step.items_total !== null && step.items_total !== undefined) {
    panel.append(children(run, step));
  }
  return panel;
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
  if (!ended && !TERMINAL.includes(step.status)) {
    const output = jsonField("skip-output", "output JSON (optional: the step then succeeds with it)");
    out.push(h("div", {class: "action-group"}, output.element,
      control({name: "skip", label: "Skip step", danger: true, question: `Skip ${step.key}?`,
        perform: async () => {
          const value = output.value();
          return done(await post(`${base}/skip`, value === undefined ? {} : {output: value}));
        }})));
  }
  if (!step.key.includes("[")) out.push(rerun(run, step.key, notify));
  return out;
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

function children(run, step) {
  const box = h("div", {class: "children", "data-children": step.key});
  const body = h("tbody");
  const more = h("button", {type: "button", "data-more": step.key}, "Show children");
  const detail = h("div", {class: "child-detail"});
  let cursor = "0";
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const page = await get(`/runs/${enc(run.id)}/steps/${enc(step.key)}/children?limit=${CHILDREN_PAGE}` + (cursor !== "0" ? `&cursor=${cursor}` : ""));
      for (const child of page.children) {
        body.append(h("tr", {"data-child": child.key, class: "clickable", onclick: () => {
          detail.replaceChildren(h("h4", {}, child.key, " ", badge(child.status)), ...payloads(child));
        }}, h("td", {class: "mono"}, child.key), h("td", {}, badge(child.status)),
        h("td", {}, child.attempt || "—"), h("td", {}, child.started_at ? duration(elapsed(child)) : "—")));
      }
      cursor = page.cursor;
      more.textContent = "More children";
      more.hidden = !cursor;
    } catch (error) {
      box.append(h("p", {class: "error"}, error.message));
    } finally {
      more.disabled = false;
    }
  });
  const total = step.items_total ?? "?";
  box.append(h("h3", {}, `Children (${total})`),
    h("table", {class: "small"}, h("thead", {}, h("tr", {}, ["child", "status", "attempt", "took"].map((t) => h("th", {}, t)))), body),
    more, detail);
  return box;
}
