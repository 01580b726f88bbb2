// The operator's inbox: every approval and form waiting for people, across runs, newest first,
// with its deadline and escalations; approved, rejected or answered from here as an operator
// (the API notes who on the run's timeline).
import {get, post, query} from "./api.js";
import {h, fact, stamp, when, runLink} from "./dom.js";
import {control, jsonField, textField} from "./actions.js";
import {validate, skeleton} from "./schema.js";

const POLL_MS = 5000;
const enc = encodeURIComponent;

export async function inboxPage(root) {
  root.append(h("h1", {}, "Inbox"));
  const body = h("div", {class: "inbox", "data-inbox": ""});
  const more = h("div", {});
  root.append(body, more);
  // One card per wait, kept while the wait is listed as it was: a person typing an answer or a
  // comment keeps it across polls; a wait that moved on (a reminder, an escalation, a decision)
  // is drawn again, and one that ended leaves at the next poll.
  const cards = new Map();
  const show = async () => {
    const page = await get(`/inbox${query({limit: 50})}`);
    const listed = new Set();
    const shown = page.waits.map((wait) => {
      const key = JSON.stringify([wait.run_id, wait.step, wait.next_at, wait.decisions.length, wait.people]);
      listed.add(key);
      if (!cards.has(key)) cards.set(key, item(wait));
      return cards.get(key);
    });
    for (const key of [...cards.keys()]) if (!listed.has(key)) cards.delete(key);
    body.replaceChildren(...(shown.length ? shown : [h("p", {class: "muted"}, "Nothing is waiting for people.")]));
    more.replaceChildren(page.cursor ? h("p", {class: "muted"}, "Showing the newest 50.") : "");
  };
  await show();
  const timer = setInterval(() => show().catch(() => {}), POLL_MS);
  return () => clearInterval(timer);
}

function item(wait) {
  const facts = h("dl", {class: "facts"},
    fact("Run", runLink(wait.run_id)),
    fact("Workflow", wait.workflow),
    fact("Opened", stamp(wait.opened_at)),
    fact("Deadline", wait.expires_at ? when(wait.expires_at) : "none"),
    fact("Next", wait.next_at ? stamp(wait.next_at) : "—"),
    fact("Who", wait.people.length ? wait.people.join(", ") : "anyone with the link"));
  if (wait.kind === "approval") {
    facts.append(...fact("Quorum", `${wait.decisions.filter((d) => d.decision === "approved").length} of ${wait.quorum}`));
    if (wait.remind) facts.append(...fact("Reminded", `every ${wait.remind}`));
    if (wait.escalations.length) facts.append(...fact("Escalation", escalations(wait.escalations)));
  }
  return h("section", {class: "card", "data-wait": `${wait.run_id}/${wait.step}`, "data-kind": wait.kind},
    h("h2", {}, `${wait.kind === "input" ? "Form" : "Approval"}: ${wait.message || wait.step}`),
    facts,
    wait.kind === "input" ? answer(wait) : decide(wait));
}

function escalations(list) {
  return h("ol", {}, list.map((e) => h("li", {"data-done": String(e.done)},
    `${e.done ? "done" : "at"} ${stamp(e.at)}: ${e.action ? e.action : `links to ${e.to.join(", ")}`}`)));
}

function decide(wait) {
  const base = `/runs/${enc(wait.run_id)}/steps/${enc(wait.step)}`;
  const comment = textField("comment", "Comment (optional)");
  const done = (changed) => `${changed.message} (run ${changed.status})`;
  return h("div", {class: "actions"}, comment.element,
    control({name: "approve", label: "Approve", question: `Approve ${wait.step} as an operator?`,
      perform: async () => done(await post(`${base}/decision`, {approved: true, comment: comment.value()}))}),
    control({name: "reject", label: "Reject", danger: true, question: `Reject ${wait.step}?`,
      perform: async () => done(await post(`${base}/decision`, {approved: false, comment: comment.value()}))}));
}

function answer(wait) {
  const base = `/runs/${enc(wait.run_id)}/steps/${enc(wait.step)}`;
  const field = jsonField("answer", "Answer (JSON, as the form asks)", JSON.stringify(skeleton(wait.form), null, 2));
  return h("div", {class: "actions"}, field.element,
    control({name: "answer", label: "Answer", question: `Answer ${wait.step} as an operator?`,
      perform: async () => {
        const value = field.value();
        const problems = validate(wait.form || {}, value);
        if (problems.length) {
          const error = new Error("the answer does not match the form (checked here, not sent)");
          error.details = problems;
          throw error;
        }
        const changed = await post(`${base}/answer`, {answer: value});
        return `${changed.message} (run ${changed.status})`;
      }}));
}
