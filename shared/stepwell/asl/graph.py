"""A machine's states as a graph, as the Step Functions console draws it: every top-level state,
its transitions (``Next``, a Choice's rules and ``Default``) and its ``Catch`` routes.

Each node names the step names its records carry (``key_name`` of the state, and for a
``.waitForTaskToken`` task its token's wait too), so a run's records can be matched to the
states they belong to; a Parallel's branches and a Map's items carry the state's name as the
first part of their keys (``Reserve.0.ReserveItem``).
"""

from __future__ import annotations

from typing import Any

from stepwell.asl.tasks import TOKEN_SUFFIX, key_name

TOKEN_WAIT = " token"
"""What a task's token wait adds to its state's step name (see ``Machine.token``)."""


def machine_graph(document: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(nodes, edges) of a machine's top-level states: nodes ``{id, label, kind, names, start,
    end, error}`` in the file's order, edges ``{source, target, kind}`` with kind ``next``,
    ``choice``, ``default`` or ``catch``."""
    states: dict[str, Any] = document.get("States") or {}
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for name, state in states.items():
        kind = str(state.get("Type", ""))
        names = [key_name(name)]
        if str(state.get("Resource", "")).endswith(TOKEN_SUFFIX):
            names.append(key_name(name) + TOKEN_WAIT)
        nodes.append(
            {
                "id": name,
                "label": name,
                "kind": kind,
                "names": names,
                "start": name == document.get("StartAt"),
                "end": kind in ("Succeed", "Fail") or bool(state.get("End")),
                "error": state.get("Error") if kind == "Fail" else None,
            }
        )
        if kind != "Choice" and state.get("Next"):
            edges.append({"source": name, "target": state["Next"], "kind": "next"})
        for rule in state.get("Choices") or []:
            edges.append({"source": name, "target": rule.get("Next"), "kind": "choice"})
        if state.get("Default"):
            edges.append({"source": name, "target": state["Default"], "kind": "default"})
        for rule in state.get("Catch") or []:
            edges.append({"source": name, "target": rule.get("Next"), "kind": "catch"})
    # Two rules of one Choice may lead to one state: one edge.
    unique = {(e["source"], e["target"], e["kind"]): e for e in edges if e["target"] in states}
    return nodes, list(unique.values())
