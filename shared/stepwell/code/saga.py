"""Compensation in code-first workflows: a saga that undoes what succeeded when the code fails.

Durable functions leave compensation to the code (``try``/``except`` around the steps, as
Temporal and Lambda durable functions do); :meth:`Context.saga` makes the common shape short::

    with ctx.saga() as saga:
        charge = ctx.task("charge", function="ChargeCardFunction", input=order)
        saga.add("refund", function="RefundChargeFunction", input=charge)
        ctx.task("ship", function="ShipOrderFunction", input=order)   # raises StepFailed

When an exception leaves the block, the compensations added so far run newest first, each a
durable task of its own (retried under its own policy, replayed from its record like any
step), and the exception goes on: the run fails with it. A compensation that fails does not
stop the others; :attr:`Saga.outcomes` says how each went. Only the workflow's own exceptions
start it (``Exception``): the replay's internal suspension passes through untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from stepwell.code.errors import StepFailed

if TYPE_CHECKING:
    from stepwell.code.logger import ReplayLogger
    from stepwell.code.specs import Duration, RetryPolicy


class Saga:
    """Compensations registered as the workflow goes (see the module's docstring)."""

    def __init__(
        self, task: Callable[..., Any], step: Callable[..., Any], logger: ReplayLogger
    ) -> None:
        self._task, self._step, self._logger = task, step, logger
        """The workflow's ``ctx.task``, ``ctx.step`` and ``ctx.logger``."""
        self._undo: list[tuple[str, Callable[[], Any]]] = []
        self.outcomes: dict[str, str] = {}
        """Each compensation that ran, by name: ``succeeded``, or the error's name."""

    def add(
        self,
        name: str,
        *,
        function: str,
        input: Any = None,
        retry: RetryPolicy | None = None,
        timeout: Duration | None = None,
    ) -> None:
        """Undo with a task (a Lambda function) should the block fail later."""
        task = self._task
        self._undo.append(
            (
                name,
                lambda: task(name, function=function, input=input, retry=retry, timeout=timeout),
            )
        )

    def add_step(self, name: str, fn: Callable[[], Any]) -> None:
        """Undo with code run in the replay and recorded (``ctx.step``)."""
        step = self._step
        self._undo.append((name, lambda: step(name, fn)))

    def compensate(self) -> dict[str, str]:
        """Run the compensations added so far, newest first (each once: a second call runs
        none again); returns :attr:`outcomes`."""
        while self._undo:
            name, undo = self._undo.pop()
            try:
                undo()
                self.outcomes[name] = "succeeded"
            except StepFailed as failed:
                self.outcomes[name] = failed.error_type
                self._logger.warning("compensation %s failed: %s", name, failed)
        return self.outcomes

    def __enter__(self) -> Saga:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: Any
    ) -> Literal[False]:
        if isinstance(error, Exception):
            self.compensate()
        return False
