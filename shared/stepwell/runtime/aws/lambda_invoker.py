"""Step dispatch on AWS: an asynchronous (``Event``) Lambda invoke of the step envelope."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from stepwell.engine.commands import DispatchAttempt
from stepwell.runtime.envelope import StepEnvelope

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

BUILTIN_KINDS = frozenset({"http", "notify", "agent", "shell", "code"})
"""Step kinds the runner function executes (``code``: a replay of a code-first workflow);
every other dispatched step names its function."""

Resolve = Callable[[str | None, str], str]
"""``(function the step names or None, step type) -> function name or ARN to invoke``."""


class FunctionResolver:
    """Maps what a step names to the function to invoke.

    Task steps name a function by its logical id in the template (``ChargeCardFunction``). A
    step function named ``${AWS::StackName}-ChargeCard`` (its logical id less ``Function``,
    after the stack's prefix) needs nothing more: the prefix (``STEPWELL_FUNCTION_PREFIX``)
    finds it. ``STEPWELL_FUNCTIONS`` maps other logical ids to a deployed name or ARN. A plain
    function name or an ARN is used as it is. Built-in kinds go to the runner.
    """

    def __init__(
        self, functions: Mapping[str, str], runner: str | None, prefix: str | None = None
    ) -> None:
        self.functions = dict(functions)
        self.runner = runner
        self.prefix = prefix

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> FunctionResolver:
        """From ``STEPWELL_FUNCTION_PREFIX``, ``STEPWELL_FUNCTIONS`` (a JSON object) and
        ``STEPWELL_RUNNER_FUNCTION``."""
        raw = environ.get("STEPWELL_FUNCTIONS") or "{}"
        try:
            functions = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"STEPWELL_FUNCTIONS is not JSON: {exc}") from None
        if not isinstance(functions, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in functions.items()
        ):
            raise ValueError(
                'STEPWELL_FUNCTIONS must be a JSON object of strings, e.g. {"ChargeCardFunction": '
                '"arn:aws:lambda:...:function:charge-card"}'
            )
        return cls(
            functions,
            environ.get("STEPWELL_RUNNER_FUNCTION") or None,
            environ.get("STEPWELL_FUNCTION_PREFIX") or None,
        )

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
        mapped = self.functions.get(function)
        if mapped is not None:
            return mapped
        return deployed_name(function, self.prefix)


LOGICAL_SUFFIX = "Function"


def deployed_name(function: str, prefix: str | None) -> str:
    """The name a step function of logical id ``function`` is deployed under: the prefix and
    the id less ``Function`` (``stepwell-ChargeCard`` for ``ChargeCardFunction``). Anything
    else (an ARN, a plain name) is used as it is."""
    stem = function.removesuffix(LOGICAL_SUFFIX)
    if prefix and stem and stem != function and ":" not in function:
        return prefix + stem
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
                    f"step '{command.step_id}' names function {command.function!r}, resolved to "
                    f"{name!r}, which does not exist: deploy it, or map the name to the "
                    "function's name or ARN in STEPWELL_FUNCTIONS (or deploy it as "
                    "${AWS::StackName}-<logical id less Function>)"
                ) from exc
            raise
        if response.get("StatusCode") != 202:
            raise LambdaDispatchError(
                f"Lambda answered {response.get('StatusCode')} to the Event invoke of {name!r} "
                f"for step '{command.step_id}' (202 expected)"
            )
