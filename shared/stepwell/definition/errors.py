"""Problems found in a workflow definition, and where in its YAML source they are.

Every check (YAML syntax, the pydantic models, the semantic rules) reports :class:`Problem`
values; the loader raises them together as one :class:`DefinitionError`. A :class:`SourceMap`
turns a path into the loaded document (``("steps", "charge", "retry")``) into a line and column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PathPart = str | int
"""One step into a document: a mapping key or a list index."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition, located in its file (line and col are 1-based)."""

    file: str
    line: int
    col: int
    step: str | None
    field: str | None
    message: str
    warning: bool = False
    """Worth a look, but the definition runs as it is (``stepwell validate`` still exits 0)."""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}: " + ("warning: " if self.warning else "")
        if self.step is not None:
            where += f"step '{self.step}': "
        if self.field is not None:
            where += f"field '{self.field}': "
        return where + self.message


class DefinitionError(Exception):
    """A definition that cannot be used; ``problems`` holds every problem found, in file order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def field_name(parts: Sequence[PathPart]) -> str | None:
    """A path inside a step or workflow as users write it: ``retry.max_attempts``, ``events[0]``."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


class SourceMap:
    """Lines and columns of the keys and items of a document loaded by ruamel.yaml (round trip).

    ``root`` is the loaded document (``CommentedMap``/``CommentedSeq`` nodes carry ``.lc``); a map
    without a root places everything at 1:1, for workflows built in code.
    """

    def __init__(self, filename: str, root: Any = None) -> None:
        self.filename = filename
        self.root = root

    def locate(self, path: Sequence[PathPart]) -> tuple[int, int]:
        """1-based (line, col) of the deepest part of ``path`` present in the source.

        A mapping entry is placed at its key, a list entry at the item. Parts missing from the
        source (a field left out, a default) fall back to their closest present parent.
        """
        node = self.root
        line, col = _start(node)
        for part in path:
            if isinstance(node, Mapping) and isinstance(part, int | str) and part in node:
                position = _position(node, "key", part)
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                position = _position(node, "item", part)
            else:
                break
            if position is None:  # a key that came from a YAML merge (<<) has no position here
                break
            line, col = position
            node = node[part]
        return line + 1, col + 1

    def problem(
        self,
        path: Sequence[PathPart],
        message: str,
        *,
        step: str | None = None,
        field: str | None = None,
    ) -> Problem:
        """A :class:`Problem` located at ``path``."""
        line, col = self.locate(path)
        return Problem(self.filename, line, col, step, field, message)

    def at_step(
        self, path: Sequence[PathPart], message: str, *, at: Sequence[PathPart] | None = None
    ) -> Problem:
        """A :class:`Problem` naming the step and field ``path`` is in, located at ``at`` or there.

        ``("steps", "charge", "retry", "interval")`` names step 'charge', field 'retry.interval';
        a path outside ``steps`` names only a field (``triggers.schedules[0].expression``).
        """
        step: str | None = None
        rest = list(path)
        if len(rest) >= 2 and rest[0] == "steps":
            step, rest = str(rest[1]), rest[2:]
        return self.problem(path if at is None else at, message, step=step, field=field_name(rest))


def _start(node: Any) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return 0, 0
    return int(lc.line), int(lc.col)


def _position(node: Any, kind: str, part: PathPart) -> tuple[int, int] | None:
    """0-based (line, col) of a key (``kind`` "key") or list item ("item"), if ruamel kept it."""
    lc = getattr(node, "lc", None)
    try:
        line, col = getattr(lc, kind)(part)
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    return int(line), int(col)
