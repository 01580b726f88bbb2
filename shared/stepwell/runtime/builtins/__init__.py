"""The built-in step kinds the runner function executes: http, notify, agent, shell, aws.

:func:`run_builtin` takes the parameters the engine rendered for the step (see
``stepwell.engine.kinds.task``) and returns a :class:`BuiltinResult`. It fails by
raising: the exception's class name is the error name users list in ``retry_on`` and
``non_retryable``, and a class attribute ``retryable = False`` marks errors retrying cannot fix.
``ERROR_NAMES`` lists each kind's names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from stepwell.engine.state import Usage
from stepwell.runtime.aws.roles import AssumedRoles
from stepwell.runtime.builtins import (
    agent,
    api_gateway,
    aws,
    http,
    http_invoke,
    model_invocation,
    notify,
    shell,
)
from stepwell.runtime.builtins.agent import BudgetExceeded, ModelPriceUnknown
from stepwell.runtime.builtins.api_gateway import Signer
from stepwell.runtime.builtins.http import (
    HttpAddressRefused,
    HttpBadUrl,
    HttpConnectionError,
    HttpResponseTooLarge,
    HttpServerError,
    HttpThrottled,
    Network,
    SecretNotDeclared,
)
from stepwell.runtime.builtins.notify import EventPublisher, NotifyDetailInvalid
from stepwell.runtime.step_context import StepContext

if TYPE_CHECKING:
    from boto3 import Session
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

KINDS = ("http", "notify", "agent", "shell", "aws")
ERROR_NAMES: dict[str, tuple[str, ...]] = {
    "http": http.ERROR_NAMES,
    "notify": notify.ERROR_NAMES,
    "agent": agent.ERROR_NAMES,
    "shell": shell.ERROR_NAMES,
    "aws": aws.ERROR_NAMES,
}


class UnknownStepKind(LookupError):
    """The runner was sent a step kind it does not run."""

    retryable: ClassVar[bool] = False


class MissingDependency(RuntimeError):
    """The runner was not given what a step kind needs (a bus for notify)."""

    retryable: ClassVar[bool] = False


def _no_secrets(name: str) -> str:
    raise MissingDependency(f"secret {name!r} was asked for, but the runner has no secrets reader")


@dataclass
class BuiltinDeps:
    """What the built-in kinds reach the world through; the runner builds it once per container.

    ``secrets`` reads a secret's value by its id (``SecretsReader`` on AWS). ``publisher`` puts
    notify events on the bus (``EventBridgeBus``). ``bedrock`` is a ``bedrock-runtime`` client;
    when None, one is created on first use from the environment's region and credentials.
    ``network`` says where http steps may go (the stack's allow-list).
    """

    secrets: Callable[[str], str] = _no_secrets
    network: Network = field(default_factory=Network)
    publisher: EventPublisher | None = None
    bedrock: BedrockRuntimeClient | None = None
    clients: dict[str, Any] = field(default_factory=dict)
    roles: AssumedRoles = field(default_factory=AssumedRoles)
    session: Session | None = None
    """The runner's own boto3 session, for what signs with its credentials (made on first use)."""

    def bedrock_client(self) -> BedrockRuntimeClient:
        """The Bedrock client (created once when none was given)."""
        if self.bedrock is None:
            import boto3

            self.bedrock = boto3.client("bedrock-runtime")
        return self.bedrock

    def client(self, service: str, role: str | None = None, run_id: str = "") -> Any:
        """A boto3 client of ``service`` for aws steps (created once per container); with
        ``role``, one that calls as that role for run ``run_id`` (assumed with STS)."""
        if role:
            return self.roles.client(service, role, run_id)
        if service not in self.clients:
            import boto3

            self.clients[service] = boto3.client(service)  # type: ignore[call-overload]
        return self.clients[service]

    def signer(self, role: str | None, run_id: str) -> Signer:
        """The credentials and region that sign a request which is no AWS API call (an API
        Gateway endpoint's): ``role``'s for run ``run_id`` (assumed with STS), else the
        runner's own."""
        if self.session is None:
            import boto3

            # Made once per container, as a client is: a session resolves the credential chain.
            self.session = boto3.Session()
        session = self.session
        credentials = self.roles.credentials(role, run_id) if role else session.get_credentials()
        if credentials is None or session.region_name is None:
            raise MissingDependency(
                "the runner has no AWS credentials or region to sign a request with"
            )
        return Signer(credentials, session.region_name)


@dataclass(frozen=True)
class BuiltinResult:
    """What a built-in step returned: its output, and its usage when it spent on a model."""

    output: Any
    usage: Usage | None = None


def run_builtin(
    step_type: str, params: Mapping[str, Any], ctx: StepContext, deps: BuiltinDeps
) -> BuiltinResult:
    """Run one attempt of a built-in step; raise its typed errors on failure."""
    if step_type == "http":
        return BuiltinResult(http.run(params, ctx, deps.secrets, deps.network))
    if step_type == "notify":
        if deps.publisher is None:
            raise MissingDependency("notify steps need an event publisher; the runner has none")
        return BuiltinResult(notify.run(params, ctx, deps.publisher))
    if step_type == "agent":
        output, usage = agent.run(params, ctx, deps.bedrock_client())
        return BuiltinResult(output, usage)
    if step_type == "shell":
        return BuiltinResult(shell.run(params, ctx))
    if step_type == "aws":
        # The optimized integrations that are not one call of the service's API.
        call = str(params.get("service")).lower(), str(params.get("action")).lower()
        optimized = params.get("integration") == "optimized"
        if optimized and call == ("bedrock", "invokemodel"):
            return BuiltinResult(model_invocation.run(params, ctx, deps.client))
        if optimized and call == ("http", "invoke"):
            return BuiltinResult(http_invoke.run(params, ctx, deps.client, deps.network))
        if optimized and call == ("apigateway", "invoke"):
            return BuiltinResult(api_gateway.run(params, ctx, deps.signer, deps.network))
        return BuiltinResult(aws.run(params, ctx, deps.client))
    raise UnknownStepKind(
        f"the runner runs {', '.join(KINDS)} steps, not {step_type!r} (step '{ctx.step_id}')"
    )


__all__ = [
    "ERROR_NAMES",
    "KINDS",
    "BudgetExceeded",
    "BuiltinDeps",
    "BuiltinResult",
    "EventPublisher",
    "HttpAddressRefused",
    "HttpBadUrl",
    "HttpConnectionError",
    "HttpResponseTooLarge",
    "HttpServerError",
    "HttpThrottled",
    "MissingDependency",
    "ModelPriceUnknown",
    "Network",
    "NotifyDetailInvalid",
    "SecretNotDeclared",
    "UnknownStepKind",
    "run_builtin",
]
