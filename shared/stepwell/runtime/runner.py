"""The runner: executes built-in step kinds, replays of code-first workflows and plain Lambdas,
then records the result."""

from __future__ import annotations

from stepwell import intake
from stepwell.runtime import builtins
from stepwell.runtime.aws.plain import PlainLambdaError
from stepwell.runtime.builtins.aws import ServiceCallFailed
from stepwell.runtime.envelope import StepEnvelope, StepResult
from stepwell.runtime.replays import replay_attempt
from stepwell.runtime.results import record
from stepwell.runtime.wiring import Runtime


def run_attempt(runtime: Runtime, envelope: StepEnvelope) -> StepResult:
    """Run one attempt the runner was sent and record its result (the run advances at once)."""
    ctx = envelope.context()
    what = f"step '{envelope.step_id}' output"
    try:
        if envelope.step_type == "code":
            result = replay_attempt(runtime, envelope)
        elif envelope.step_type in builtins.KINDS:
            done = builtins.run_builtin(envelope.step_type, envelope.input, ctx, runtime.builtins)
            result = StepResult.succeeded(envelope, intake.check(done.output, what), done.usage)
        elif envelope.step_type == "task" and envelope.function and runtime.invoke_plain:
            # A plain Lambda gets the step input as its event; its response is the output.
            output = runtime.invoke_plain(envelope.function, envelope.input)
            result = StepResult.succeeded(envelope, intake.check(output, what))
        else:
            result = StepResult.failed(
                envelope,
                "UnknownStepKind",
                f"the runner cannot run {envelope.step_type} step '{envelope.step_id}'",
                retryable=False,
            )
    except PlainLambdaError as exc:
        result = StepResult.failed(envelope, exc.error_type, str(exc), trace=exc.trace)
    except ServiceCallFailed as exc:  # named as Step Functions names it, not by its class
        result = StepResult.failed(envelope, exc.error_type, str(exc), retryable=exc.retryable)
    except Exception as exc:  # a step's exception is its failure, by type name
        result = StepResult.from_exception(envelope, exc)
    record(runtime.orchestrator, result)
    return result
