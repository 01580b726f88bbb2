// Controls that act on a run through the API: each asks for confirmation, then shows the
// answer next to itself, or the API's refusal (409, 422 with its details) in its place.
import {h} from "./dom.js";
import {ApiFailure} from "./api.js";

/** A control: fields, a button; on click "Confirm …?" then perform() -> message. The question
 *  is text, or a function that finds it out (an API preview of what the action would do): a
 *  refusal there is shown in place of the confirmation. */
export function control({name, label, question, fields = [], perform, danger = false}) {
  const result = h("div", {class: "result", role: "status"});
  const button = h("button", {type: "button", class: danger ? "danger" : "", "data-action": name}, label);
  const asked = h("span", {class: "question", "data-question": name});
  const confirmButton = h("button", {type: "button", class: danger ? "danger" : "primary", "data-confirm": name, onclick: go}, "Confirm");
  const confirm = h("span", {class: "confirm", hidden: true}, asked, " ", confirmButton,
    h("button", {type: "button", onclick: () => show(false)}, "Cancel"));
  function show(asking) {
    confirm.hidden = !asking;
    button.hidden = asking;
  }
  async function ask() {
    result.className = "result";
    result.replaceChildren();
    if (typeof question !== "function") {
      asked.replaceChildren(question);
      show(true);
      return;
    }
    button.disabled = true;
    try {
      const said = await question();
      asked.replaceChildren(said);
      show(true);
    } catch (error) {
      result.className = "result error";
      result.replaceChildren(...refusal(error));
    } finally {
      button.disabled = false;
    }
  }
  button.addEventListener("click", ask);
  async function go() {
    show(false);
    button.disabled = true;
    result.className = "result";
    result.replaceChildren(h("span", {class: "muted"}, "Sending…"));
    try {
      const message = await perform();
      result.className = "result ok";
      result.replaceChildren(message);
    } catch (error) {
      result.className = "result error";
      result.replaceChildren(...refusal(error));
    } finally {
      button.disabled = false;
    }
  }
  return h("div", {class: "action", "data-control": name}, ...fields, button, confirm, result);
}

/** What the API (or the browser's own check) said, for a person. */
export function refusal(error) {
  const status = error instanceof ApiFailure && error.status ? `${error.status}: ` : "";
  const out = [h("span", {}, status + error.message)];
  const details = error.details;
  if (Array.isArray(details) && details.length) {
    out.push(h("ul", {class: "details"}, details.slice(0, 20).map((d) => h("li", {},
      [d.path || (Array.isArray(d.loc) ? d.loc.join(".") : ""), d.message].filter(Boolean).join(": ")))));
  }
  return out;
}

/** A textarea for JSON; value() parses it (undefined when empty) or throws a clear error. */
export function jsonField(name, placeholder, initial = "") {
  const area = h("textarea", {name, placeholder, rows: 3, spellcheck: "false", class: "mono"});
  area.value = initial;
  return {
    element: h("label", {class: "field"}, h("span", {}, placeholder), area),
    value() {
      const text = area.value.trim();
      if (!text) return undefined;
      try {
        return JSON.parse(text);
      } catch (error) {
        throw new Error(`${name} is not valid JSON: ${error.message}`);
      }
    },
  };
}

export function textField(name, placeholder) {
  const input = h("input", {name, placeholder});
  return {element: input, value: () => input.value.trim() || undefined};
}
