"""``benchmarks/step_costs.py``: the thread CPU time of a W1 step's parts, summed per call."""

from __future__ import annotations

from collections import Counter

from helpers import EngineDriver, task, workflow
from step_costs import TIMED, timed


def test_each_call_is_timed_and_the_functions_are_put_back() -> None:
    before = {name: getattr(owner, attribute) for name, (owner, attribute) in TIMED.items()}
    spent: Counter[str] = Counter()
    with timed(spent):
        assert all(getattr(o, a) is not before[n] for n, (o, a) in TIMED.items())
        run = EngineDriver(workflow({"a": task(), "b": task("a")}, name="two"))
        run.succeed("a", 1)
        run.succeed("b", 2)
    assert run.run.status == "succeeded"
    assert spent["the engine's decisions"] > 0
    assert set(spent) == {"the engine's decisions"}  # nothing else ran
    assert all(getattr(o, a) is before[n] for n, (o, a) in TIMED.items())
