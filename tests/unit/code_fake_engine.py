"""A small fake of the engine's side of a code-first run, for the replay's unit tests.

It does what the engine does with a Yield, and nothing more: the Issues become step records in
flight, the Checkpoints become ended records, and a test ends the steps it wants
(:meth:`FakeRun.succeed`, :meth:`FakeRun.fail`) before replaying again. Every Yield crosses
the wire form (``to_dict`` / JSON / ``from_dict``) as it would between the runner and the engine.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from stepwell.code.context import replay
from stepwell.code.protocol import Issue, Recorded, RunInfo, Yield
from stepwell.code.replay import Services

T0 = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)

WAIT_KINDS = {"approval", "delay", "callback", "workflow"}


class Fail:
    """An answer that fails the step (for :meth:`FakeRun.drive`)."""

    def __init__(self, error_type: str, message: str = "") -> None:
        self.error_type = error_type
        self.message = message


class FakeRun:
    """One code-first run: its journal, its replays and what they yielded."""

    def __init__(
        self,
        function: Callable[..., Any],
        input: Any = None,
        *,
        run_id: str = "run-1",
        workflow: str = "release",
        info: dict[str, Any] | None = None,
        logger: logging.Logger | None = None,
        services: Services | None = None,
    ) -> None:
        self.function = function
        self.services = services
        self.input = input
        self.run_id = run_id
        self.workflow = workflow
        self.info = info or {}
        self.logger = logger
        self.journal: dict[str, Recorded] = {}
        self.issues: dict[str, Issue] = {}
        self.yields: list[Yield] = []
        self.sleeps: list[float] = []
        self.now = T0

    # -- the engine's part ---------------------------------------------------------------

    def replay(self, function: Callable[..., Any] | None = None) -> Yield:
        """Replay the function (or a changed one) over the journal; record what it yields."""
        self.now += timedelta(minutes=1)
        info = RunInfo(
            run_id=self.run_id,
            workflow=self.workflow,
            replay=len(self.yields) + 1,
            started_at=T0.isoformat(),
            **self.info,
        )
        result = replay(
            function or self.function,
            self.input,
            dict(self.journal),
            info,
            self.now,
            sleep=self.sleeps.append,
            logger=self.logger,
            services=self.services,
        )
        result = Yield.from_dict(json.loads(json.dumps(result.to_dict())))
        self.yields.append(result)
        for checkpoint in result.checkpoints:
            held = self.journal.get(checkpoint.key)
            polling = held is not None and held.kind == "poll" and not held.ended
            assert held is None or polling, f"{checkpoint.key} checkpointed twice"
            self.journal[checkpoint.key] = Recorded(
                checkpoint.key,
                checkpoint.name,
                checkpoint.kind,
                checkpoint.position,
                checkpoint.status,
                checkpoint.output,
                checkpoint.error,
                attempt=1,
            )
        for issue in result.issued:
            held = self.journal.get(issue.key)
            if issue.kind == "poll":  # a wait_for_condition: its one record, updated in place
                self.journal[issue.key] = Recorded(
                    issue.key,
                    issue.name,
                    issue.kind,
                    issue.position,
                    "waiting",
                    output=issue.input,
                    attempt=issue.spec["checks"],
                    expires_at=issue.spec["next"],
                )
                self.issues[issue.key] = issue
                continue
            assert held is None or held.status == "pending", f"{issue.key} issued twice"
            status = "waiting" if issue.kind in WAIT_KINDS else "running"
            self.journal[issue.key] = Recorded(
                issue.key,
                issue.name,
                issue.kind,
                issue.position,
                status,
                attempt=1,
                # A wait whose end the code fixed (create_callback) ends then, as the engine has it.
                expires_at=issue.spec.get("until") if issue.kind == "callback" else None,
            )
            self.issues[issue.key] = issue
        return result

    def succeed(self, key: str, output: Any = None) -> None:
        """End an issued step with ``output``."""
        record = self.journal[key]
        assert not record.ended, f"{key} has ended already"
        self.journal[key] = replace(record, status="succeeded", output=output)

    def fail(self, key: str, error_type: str, message: str = "") -> None:
        """End an issued step in failure."""
        record = self.journal[key]
        assert not record.ended, f"{key} has ended already"
        self.journal[key] = replace(
            record, status="failed", error={"type": error_type, "message": message}
        )

    def in_flight(self) -> list[str]:
        """Keys of the steps not ended, in the order they were issued."""
        return [key for key in self.issues if not self.journal[key].ended]

    def drive(self, answer: Callable[[Issue], Any], limit: int = 100) -> Yield:
        """Replay, end every step in flight with ``answer(issue)`` (a :class:`Fail` fails
        it), and repeat until the run completes or fails."""
        for _ in range(limit):
            result = self.replay()
            if result.status != "suspended":
                return result
            # A wait_for_condition is checked by the replay itself (each replay is a minute on).
            polls = [k for k in self.in_flight() if self.issues[k].kind == "poll"]
            pending = [k for k in self.in_flight() if k not in polls]
            assert pending or polls, "suspended with nothing in flight"
            for key in pending:
                value = answer(self.issues[key])
                if isinstance(value, Fail):
                    self.fail(key, value.error_type, value.message)
                else:
                    self.succeed(key, value)
        raise AssertionError(f"no end after {limit} replays")

    @property
    def last(self) -> Yield:
        return self.yields[-1]

    def issued(self, index: int = -1) -> list[str]:
        """Keys issued by a replay (the last by default)."""
        return [issue.key for issue in self.yields[index].issued]
