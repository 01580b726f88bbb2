// Events from the bus: the ones a run's waits received (from its timeline), and a form that
// sends one through POST /events, as the system a run waits on would.
import {post} from "./api.js";
import {h, stamp} from "./dom.js";
import {control, jsonField, textField} from "./actions.js";

const RECEIVED = {event_received: "completed the wait", event_duplicate: "again: changed nothing"};

/** The events a run's waits took (and the ones delivered again), oldest first. */
export function eventsReceived() {
  const body = h("tbody");
  const table = h("table", {class: "events-received", "data-events-received": ""},
    h("thead", {}, h("tr", {}, h("th", {}, "at"), h("th", {}, "step"), h("th", {}, "event"), h("th", {}, ""))), body);
  const none = h("p", {class: "muted"}, "No event reached this run's waits.");
  return {
    element: h("div", {}, none, table),
    update(entries) {
      const rows = entries.filter((e) => e.type in RECEIVED);
      table.hidden = !rows.length;
      none.hidden = Boolean(rows.length);
      body.replaceChildren(...rows.map((e) => h("tr", {"data-event": e.data?.event || ""},
        h("td", {}, stamp(e.at)), h("td", {class: "mono"}, e.step || ""),
        h("td", {class: "mono"}, e.message.replace(/^event /, "").split(" ")[0]), h("td", {class: "muted"}, RECEIVED[e.type]))));
    },
  };
}

/** The "send event" page: source, detail-type, detail and an id of the sender's own. */
export async function eventsPage(root) {
  const source = textField("source", "source, e.g. payments");
  const detailType = textField("detail_type", "detail-type, e.g. payment.settled");
  const detail = jsonField("detail", "detail (JSON object)", "{}");
  const id = textField("id", "id (optional: sent again with it, it is the same event)");
  root.append(
    h("h1", {}, "Send an event"),
    h("p", {class: "muted"}, "Puts an event on the engine's bus: every run waiting for its source and " +
      "detail-type that carries its correlation value gets it; one no wait takes yet is kept for the waits that look back."),
    h("section", {class: "card send-event"}, control({
      name: "send-event",
      label: "Send event",
      fields: [source.element, detailType.element, detail.element, id.element],
      question: () => `Send ${source.value() || "?"} ${detailType.value() || "?"}?`,
      perform: async () => {
        const body = {source: source.value(), detail_type: detailType.value(), detail: detail.value() || {}};
        if (id.value()) body.id = id.value();
        const sent = await post("/events", body);
        return `Sent ${sent.source} ${sent.detail_type}${sent.id ? ` (id ${sent.id})` : ""}.`;
      },
    })),
  );
  return null;
}
