"""The intrinsic functions of the Amazon States Language (``States.Format('{}', $.a)`` in a
``.$`` field), parsed and evaluated as the Step Functions developer guide defines them.

Arguments are string literals in single quotes (``\\'``, ``\\{``, ``\\}`` and ``\\\\`` escape),
numbers, ``true``/``false``/``null``, paths (``$.a``, ``$$.Execution.Id``) and nested calls.
``States.UUID`` and ``States.MathRandom`` draw from the run's deterministic source (the replay
of a code-first workflow must give the same value every time), so a machine's decisions replay
as they were made.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import uuid
from collections.abc import Callable
from typing import Any

Read = Callable[[str], Any]
"""Read a path (``$.a``, ``$$.Execution.Id``)."""

SEED: Callable[[], float] = random.random
"""Where States.UUID and States.MathRandom draw from (the machine sets the run's own)."""


class IntrinsicError(Exception):
    """A call that cannot be evaluated (``States.IntrinsicFailure`` in Step Functions)."""


def call(text: str, read: Read, draw: Callable[[], float] | None = None) -> Any:
    """Evaluate one intrinsic call."""
    return _Parser(text, read, draw or SEED).whole()


def check(text: str, check_path: Callable[[str], str | None]) -> str | None:
    """Why ``text`` is not an intrinsic call (None: it parses, names functions that exist and
    reads paths ``check_path`` accepts), found without evaluating it."""

    def read(path: str) -> None:
        why = check_path(path)
        if why is not None:
            raise IntrinsicError(f"{text!r}: {why}")

    try:
        _Parser(text, read, SEED, evaluate=False).whole()
    except IntrinsicError as exc:
        return str(exc)
    return None


class _Parser:
    def __init__(
        self, text: str, read: Read, draw: Callable[[], float], evaluate: bool = True
    ) -> None:
        self.text = text
        self.at = 0
        self.read = read
        self.draw = draw
        self.evaluate = evaluate
        """False: parse only (the functions named must exist, none is called)."""

    def whole(self) -> Any:
        """The call the text holds, and nothing after it."""
        value = self.expression()
        self.skip()
        if self.at < len(self.text):
            raise IntrinsicError(
                f"{self.text!r}: unexpected {self.text[self.at :]!r} after the call"
            )
        return value

    def skip(self) -> None:
        while self.at < len(self.text) and self.text[self.at].isspace():
            self.at += 1

    def expression(self) -> Any:
        self.skip()
        text, at = self.text, self.at
        if text.startswith("States.", at):
            return self._call()
        if at < len(text) and text[at] == "'":
            return self._string()
        if at < len(text) and text[at] == "$":
            end = at
            depth = 0
            while end < len(text) and (depth or text[end] not in ",)"):
                depth += {"[": 1, "]": -1, "(": 1, ")": -1}.get(text[end], 0)
                end += 1
            self.at = end
            return self.read(text[at:end].strip())
        end = at
        while end < len(text) and text[end] not in ",)":
            end += 1
        literal = text[at:end].strip()
        self.at = end
        try:
            return json.loads(literal)
        except ValueError:
            raise IntrinsicError(f"{self.text!r}: {literal!r} is not an argument") from None

    def _string(self) -> str:
        out, self.at = [], self.at + 1
        while self.at < len(self.text):
            char = self.text[self.at]
            if char == "\\" and self.at + 1 < len(self.text):
                out.append(self.text[self.at + 1])
                self.at += 2
                continue
            if char == "'":
                self.at += 1
                return "".join(out)
            out.append(char)
            self.at += 1
        raise IntrinsicError(f"{self.text!r}: a string is not closed")

    def _call(self) -> Any:
        start = self.at
        paren = self.text.find("(", start)
        if paren < 0:
            raise IntrinsicError(f"{self.text!r}: a function call needs (...)")
        name = self.text[start:paren].strip()
        self.at = paren + 1
        args: list[Any] = []
        self.skip()
        if self.at < len(self.text) and self.text[self.at] == ")":
            self.at += 1
        else:
            while True:
                args.append(self.expression())
                self.skip()
                if self.at >= len(self.text):
                    raise IntrinsicError(f"{self.text!r}: {name} is not closed")
                if self.text[self.at] == ",":
                    self.at += 1
                    continue
                if self.text[self.at] == ")":
                    self.at += 1
                    break
                raise IntrinsicError(f"{self.text!r}: unexpected {self.text[self.at]!r}")
        function = FUNCTIONS.get(name)
        if function is None:
            raise IntrinsicError(
                f"{name} is not an intrinsic function (known: {', '.join(FUNCTIONS)})"
            )
        if not self.evaluate:
            return None
        try:
            return function(self, *args)
        except IntrinsicError:
            raise
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            raise IntrinsicError(f"{name}: {exc}") from None


def _format(_: _Parser, template: str, *values: Any) -> str:
    parts = template.split("{}")
    if len(parts) - 1 != len(values):
        raise IntrinsicError(
            f"States.Format: {len(parts) - 1} placeholders for {len(values)} arguments"
        )
    out = parts[0]
    for value, part in zip(values, parts[1:], strict=True):
        out += _java(value) + part
    return out


def _java(value: Any) -> str:
    """A value as States.Format writes it, Java's way: ``{a=1, b=[x, y]}`` for an object,
    strings bare, ``null``, ``true``."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_java(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_java(v) for v in value) + "]"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _add(_: _Parser, first: Any, second: Any) -> int:
    """States.MathAdd: each number rounded to an integer as Java rounds (half up), then
    added."""
    numbers = (first, second)
    if any(isinstance(n, bool) or not isinstance(n, int | float) for n in numbers):
        raise IntrinsicError(f"States.MathAdd: {first!r} and {second!r} are not both numbers")
    return sum(math.floor(n + 0.5) for n in numbers)


def partition(items: list[Any], size: int) -> list[list[Any]]:
    if size < 1:
        raise IntrinsicError("States.ArrayPartition: the chunk size must be at least 1")
    return [items[i : i + size] for i in range(0, len(items), size)]


def array_range(first: int, last: int, step: int) -> list[int]:
    if step == 0:
        raise IntrinsicError("States.ArrayRange: the step must not be 0")
    out = list(range(int(first), int(last) + (1 if step > 0 else -1), int(step)))
    if len(out) > 1000:
        raise IntrinsicError("States.ArrayRange: at most 1,000 items")
    return out


def _unique(_: _Parser, items: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def hash_of(data: str, algorithm: str) -> str:
    known = {
        "MD5": "md5",
        "SHA-1": "sha1",
        "SHA-256": "sha256",
        "SHA-384": "sha384",
        "SHA-512": "sha512",
    }
    if algorithm not in known:
        raise IntrinsicError(f"States.Hash: algorithm {algorithm!r} (one of {', '.join(known)})")
    return hashlib.new(known[algorithm], str(data).encode()).hexdigest()


def _merge(_: _Parser, left: dict[str, Any], right: dict[str, Any], deep: bool) -> dict[str, Any]:
    if not deep:
        return {**left, **right}

    def merged(a: Any, b: Any) -> Any:
        if isinstance(a, dict) and isinstance(b, dict):
            return {**a, **{k: merged(a.get(k), v) for k, v in b.items()}}
        return b

    result: dict[str, Any] = merged(left, right)
    return result


def _random(parser: _Parser, start: int, end: int, seed: Any = None) -> int:
    draw = random.Random(seed).random() if seed is not None else parser.draw()
    return int(start) + int(draw * (int(end) - int(start)))


def _uuid(parser: _Parser) -> str:
    bits = int(parser.draw() * (1 << 53)).to_bytes(8, "big") + int(
        parser.draw() * (1 << 53)
    ).to_bytes(8, "big")
    return str(uuid.UUID(bytes=bits, version=4))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "States.Format": _format,
    "States.StringToJson": lambda _, text: json.loads(text),
    "States.JsonToString": lambda _, value: json.dumps(value, separators=(",", ":")),
    "States.Array": lambda _, *items: list(items),
    "States.ArrayPartition": lambda _, items, size: partition(items, size),
    "States.ArrayContains": lambda _, items, value: value in items,
    "States.ArrayRange": lambda _, a, b, step: array_range(a, b, step),
    "States.ArrayGetItem": lambda _, items, index: items[int(index)],
    "States.ArrayLength": lambda _, items: len(items),
    "States.ArrayUnique": _unique,
    "States.Base64Encode": lambda _, text: base64.b64encode(str(text).encode()).decode(),
    "States.Base64Decode": lambda _, text: base64.b64decode(str(text)).decode(),
    "States.Hash": lambda _, data, algorithm: hash_of(data, algorithm),
    "States.JsonMerge": _merge,
    "States.MathRandom": _random,
    "States.MathAdd": _add,
    "States.StringSplit": lambda _, text, sep: [p for p in _split(str(text), str(sep)) if p],
    "States.UUID": _uuid,
}


def _split(text: str, separators: str) -> list[str]:
    """Split on any of the separator characters, as States.StringSplit does."""
    parts, current = [], ""
    for char in text:
        if char in separators:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts
