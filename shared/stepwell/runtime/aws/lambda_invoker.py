"""Step dispatch on AWS: an asynchronous (``Event``) Lambda invoke of the step envelope."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from stepwell.engine.commands import DispatchAttempt
from stepwell.runtime.envelope import StepEnvelope

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

BUILTIN_KINDS = frozenset({"http", "notify", "agent", "shell", "aws", "code"})
"""Step kinds the runner function executes (``code``: a replay of a code-first workflow);
every other dispatched step names its function."""

Resolve = Callable[[str | None, str], str]
"""``(function the step names or None, step type) -> function name or ARN to invoke``."""


class FunctionResolver:
    """Where an attempt no publication bound goes: built-in kinds to the runner; a task to the
    function it names, as it names it (a name or an ARN). A published workflow binds its
    steps' functions, so its attempts carry their ``target`` and need none of this."""

    def __init__(self, runner: str | None) -> None:
        self.runner = runner

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> FunctionResolver:
        """From ``STEPWELL_RUNNER_FUNCTION``."""
        return cls(environ.get("STEPWELL_RUNNER_FUNCTION") or None)

    def __call__(self, function: str | None, step_type: str) -> str:
        if step_type in BUILTIN_KINDS:
            if not self.runner:
                raise LookupError(
                    f"{step_type} steps run in the runner function, and "
                    "STEPWELL_RUNNER_FUNCTION is not set"
                )
            return self.runner
        if not function:
            raise LookupError(f"a {step_type} step was dispatched without a function to run")
        return function


class LambdaDispatchError(RuntimeError):
    """Lambda did not accept the asynchronous invoke."""


class LambdaInvoker:
    """Implements the Invoker port: ``Invoke(InvocationType="Event")`` with the step envelope.

    Lambda queues the event and runs it later, retrying on its own; the attempt's lease (its
    due time) covers the case where the event is lost or the function never reports back. An
    envelope over the 1 MB asynchronous limit carries its input as a pointer to the payload
    bucket instead.
    """

    def __init__(
        self,
        client: LambdaClient,
        resolve: Resolve,
        offload: Callable[[str, str], str] | None = None,
    ) -> None:
        self._client = client
        self._resolve = resolve
        self._offload = offload
        """``(name, text) -> uri``: keeps an input too large for an asynchronous invoke."""

    def dispatch(self, command: DispatchAttempt) -> None:
        """Queue the attempt's envelope on the step's function; return without waiting."""
        name = command.target or self._resolve(command.function, command.step_type)
        payload = StepEnvelope.from_dispatch(command).to_payload(self._offload)
        try:
            response = self._client.invoke(
                FunctionName=name, InvocationType="Event", Payload=payload
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise LambdaDispatchError(
                    f"step '{command.step_id}' names function {command.function!r}, invoked as "
                    f"{name!r}, which does not exist: define it in the app's stack and publish "
                    "the workflow again (a publication binds the functions its steps name), or "
                    "map the name to the function's ARN in the publication's Functions"
                ) from exc
            raise
        if response.get("StatusCode") != 202:
            raise LambdaDispatchError(
                f"Lambda answered {response.get('StatusCode')} to the Event invoke of {name!r} "
                f"for step '{command.step_id}' (202 expected)"
            )
