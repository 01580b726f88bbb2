// The local outbox: what Stepwell would have sent people (approval and form links, reminders,
// escalations), as the local stack recorded it, newest first, with the links to click.
import {get, ApiFailure} from "./api.js";
import {h, stamp, runLink} from "./dom.js";

const POLL_MS = 2000;

export async function outboxPage(root) {
  root.append(h("h1", {}, "Outbox"));
  const body = h("div", {});
  root.append(body);
  const show = async () => {
    let answer;
    try {
      answer = await get("/_local/outbox");
    } catch (error) {
      if (error instanceof ApiFailure && error.status === 404) {
        body.replaceChildren(h("p", {class: "muted"},
          "The outbox is the local stack's (stepwell dev): a deployed Stepwell sends its " +
          "notifications through its channels instead."));
        return false;
      }
      throw error;
    }
    body.replaceChildren(list(answer.notifications));
    return true;
  };
  if (!(await show())) return null;
  const timer = setInterval(() => show().catch(() => {}), POLL_MS);
  return () => clearInterval(timer);
}

function list(notifications) {
  if (!notifications.length) return h("p", {class: "muted"}, "Nothing sent yet.");
  return h("table", {class: "runs", "data-outbox": ""},
    h("thead", {}, h("tr", {}, ["Sent", "Why", "Run", "Step", "Message", "To", "Links", "Delivered"].map((t) => h("th", {}, t)))),
    h("tbody", {}, notifications.flatMap((n) => n.links.map((l) => h("tr", {"data-reason": n.reason},
      h("td", {}, stamp(n.at)),
      h("td", {}, n.type === "input.requested" ? `form ${n.reason}` : `approval ${n.reason}`),
      h("td", {}, runLink(n.run_id)),
      h("td", {class: "mono"}, n.step),
      h("td", {}, n.message || ""),
      h("td", {}, l.approver || l.assignee || "anyone"),
      h("td", {}, links(l)),
      h("td", {}, delivered(n.deliveries || [], l)))))));
}

// What the channels did for this person: their e-mail, and the request's Slack message.
function delivered(deliveries, link) {
  const person = link.delegate || link.approver || link.assignee;
  return deliveries
    .filter((d) => d.channel !== "email" || d.to === person)
    .map((d) => h("div", {"data-delivery": d.channel, "data-sent": String(d.sent)},
      d.sent ? `${d.channel}: sent` : `${d.channel}: failed (try ${d.tries})` +
        (d.retry_at ? `, again at ${stamp(d.retry_at)}` : ", given up"),
      d.error ? h("span", {class: "muted"}, ` ${d.error}`) : ""));
}

function links(link) {
  const out = [];
  for (const [name, label] of [["approve_url", "Approve"], ["reject_url", "Reject"], ["form_url", "Open form"]]) {
    if (link[name]) out.push(h("a", {href: new URL(link[name]).pathname, "data-link": name, target: "_blank", rel: "noreferrer"}, label), " ");
  }
  return out;
}
