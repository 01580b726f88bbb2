"""The Groups port over groups already read: a groups file, or none (every group unknown)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class GroupsTable:
    """Implements the Groups port over a mapping of group names to people."""

    def __init__(self, groups: Mapping[str, Sequence[str]] | None = None) -> None:
        self._groups = {name: tuple(people) for name, people in (groups or {}).items()}

    def members(self, names: frozenset[str]) -> dict[str, tuple[str, ...] | None]:
        """The people of each of ``names``; None for a group the table does not define."""
        return {name: self._groups.get(name) for name in names}
