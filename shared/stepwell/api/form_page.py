"""An input step's form, rendered on the server from its JSON Schema, and the posted fields read
back into the answer the schema describes.

Rendered here rather than in the browser: the page is the API's (API Gateway serves it, with no
dashboard beside it), so it stays a page with no script at all under the links' strict
Content-Security-Policy (``default-src 'none'``). The browser's own checks are off
(``novalidate``): the server checks the whole answer and the page lists every problem at once.

One field per property of an object schema: a list for an ``enum``, a checkbox for a boolean, a
number box for a number, a text box for a string, and a box of JSON for anything else (as for a
schema that is not an object).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from html import escape
from typing import Any

from aws_lambda_powertools.event_handler import Response

from stepwell.api import pages

WHOLE = "answer"
"""The one field of a form whose schema is not an object of properties: the answer as JSON."""
_INTEGER = re.compile(r"^[+-]?\d+$")
_INPUT_TYPES = {"email": "email", "date": "date", "uri": "url"}


def properties(schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """The properties a form shows as fields (None: the answer is one box of JSON)."""
    found = schema.get("properties")
    if schema.get("type", "object") == "object" and isinstance(found, dict) and found:
        return found
    return None


def _kind(field: Any) -> str:
    if not isinstance(field, dict):
        return "json"
    if isinstance(field.get("enum"), list) and field["enum"]:
        return "enum"
    kind = field.get("type")
    return kind if kind in ("boolean", "integer", "number", "string") else "json"


def answer_from_fields(schema: Mapping[str, Any], fields: Mapping[str, list[str]]) -> Any:
    """The answer a posted form gives, typed as the schema says. An empty box is left out (so a
    required field left empty is reported as missing); what cannot be typed is kept as text,
    and the schema's check names it."""
    shown = properties(schema)
    if shown is None:
        return _json_or_text(_first(fields, WHOLE))
    answer: dict[str, Any] = {}
    for name, field in shown.items():
        kind = _kind(field)
        raw = _first(fields, name)
        if kind == "boolean":
            answer[name] = raw == "true"
            continue
        if raw is None or raw.strip() == "":
            continue
        if kind == "enum":
            answer[name] = _json_or_text(raw)
        elif kind == "integer" and _INTEGER.match(raw.strip()):
            answer[name] = int(raw)
        elif kind == "number":
            answer[name] = _number(raw)
        elif kind == "json":
            answer[name] = _json_or_text(raw)
        else:
            answer[name] = raw
    return answer


def _first(fields: Mapping[str, list[str]], name: str) -> str | None:
    found = fields.get(name)
    return found[0] if found else None


def _json_or_text(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _number(raw: str) -> Any:
    text = raw.strip()
    if _INTEGER.match(text):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        return raw
    return value if math.isfinite(value) else raw


def page(
    *,
    status: int,
    title: str,
    message: str,
    schema: Mapping[str, Any],
    rows: list[tuple[str, str]],
    values: Any = None,
    problems: list[dict[str, Any]] | None = None,
    hand_on: str = "",
) -> Response[str]:
    """The form page: what is asked, the fields, and (after a refused answer) every problem,
    with what was sent kept in the fields."""
    details = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    listed = "".join(
        f"<li><code>{escape(str(p.get('path')))}</code>: {escape(str(p.get('message')))}</li>"
        for p in problems or []
    )
    content = (
        f'<p class="ask">{escape(message)}</p><dl>{details}</dl>'
        + (
            f'<div class="problems" role="alert"><p>The answer was not recorded; fix these '
            f"and send it again:</p><ul>{listed}</ul></div>"
            if listed
            else ""
        )
        + f'<form method="post" novalidate>{_fields(schema, values)}'
        '<button type="submit" class="primary">Send</button></form>'
        '<p class="note">Nothing is recorded until you press Send; the link answers once.</p>'
        + hand_on
    )
    return pages.html(status, title, content)


def _fields(schema: Mapping[str, Any], values: Any) -> str:
    shown = properties(schema)
    if shown is None:
        text = "" if values is None else json.dumps(values, indent=2)
        return _labelled(WHOLE, "Answer (JSON)", _textarea(WHOLE, text), schema)
    required = set(schema.get("required") or [])
    given = values if isinstance(values, dict) else {}
    out = []
    for name, field in shown.items():
        label = str(field.get("title") or name) if isinstance(field, dict) else name
        label += "" if name in required else " (optional)"
        out.append(_labelled(name, label, _control(name, field, given.get(name)), field))
    return "".join(out)


def _labelled(name: str, label: str, control: str, field: Any) -> str:
    about = field.get("description") if isinstance(field, dict) else None
    hint = f'<small class="note">{escape(str(about))}</small>' if about else ""
    return (
        f'<p class="field"><label for="f-{escape(name)}">{escape(label)}</label><br>'
        f"{control}{hint}</p>"
    )


def _control(name: str, field: Any, value: Any) -> str:
    kind = _kind(field)
    ident = f'id="f-{escape(name)}" name="{escape(name)}"'
    if kind == "enum":
        options = ['<option value="">(choose)</option>']
        for choice in field["enum"]:
            encoded = json.dumps(choice)
            chosen = " selected" if value is not None and choice == value else ""
            shown = choice if isinstance(choice, str) else encoded
            options.append(f'<option value="{escape(encoded)}"{chosen}>{escape(shown)}</option>')
        return f"<select {ident}>{''.join(options)}</select>"
    if kind == "boolean":
        checked = " checked" if value is True else ""
        return f'<input type="checkbox" {ident} value="true"{checked}>'
    if kind in ("integer", "number"):
        step = "1" if kind == "integer" else "any"
        limits = "".join(
            f' {attr}="{escape(str(field[key]))}"'
            for key, attr in (("minimum", "min"), ("maximum", "max"))
            if isinstance(field.get(key), int | float)
        )
        shown = "" if value is None else escape(str(value))
        return f'<input type="number" step="{step}"{limits} {ident} value="{shown}">'
    if kind == "string":
        kind_of_box = _INPUT_TYPES.get(str(field.get("format")), "text")
        length = field.get("maxLength")
        limit = f' maxlength="{length}"' if isinstance(length, int) else ""
        shown = "" if value is None else escape(str(value))
        return f'<input type="{kind_of_box}"{limit} {ident} value="{shown}">'
    text = "" if value is None else json.dumps(value) if not isinstance(value, str) else value
    return _textarea(name, text)


def _textarea(name: str, text: str) -> str:
    return f'<textarea id="f-{escape(name)}" name="{escape(name)}">{escape(text)}</textarea>'
