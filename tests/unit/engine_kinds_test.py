"""Dispatched kinds: task, notify, http and agent attempts carry their rendered parameters."""

from __future__ import annotations

from helpers import EngineDriver, task
from stepwell.definition.models import Workflow


def test_a_task_attempt_names_its_function():
    run = EngineDriver({"a": task(function="arn:aws:lambda:eu-west-1:1:function:f")})
    [dispatch] = run.dispatches()
    assert (dispatch.step_type, dispatch.function, dispatch.attempt) == (
        "task",
        "arn:aws:lambda:eu-west-1:1:function:f",
        1,
    )
    assert dispatch.idempotency_key == "run-1:a:1"
    assert dispatch.token == run.step("a").token


def test_notify_is_dispatched_with_its_rendered_event():
    run = EngineDriver(
        {
            "a": task(),
            "tell": {
                "type": "notify",
                "depends_on": "a",
                "detail_type": "order.${input.state}",
                "detail": {"id": "${input.id}", "charge": "${steps.a.output.charge_id}"},
                "source": "shop",
            },
        },
        {"id": "o-1", "state": "shipped"},
    )
    run.succeed("a", {"charge_id": "ch-1"})
    [dispatch] = run.dispatches("tell")
    assert dispatch.step_type == "notify"
    assert dispatch.function is None
    assert dispatch.input == {
        "detail_type": "order.shipped",
        "detail": {"id": "o-1", "charge": "ch-1"},
        "source": "shop",
    }
    assert run.status("tell") == "running"
    run.succeed("tell", {"detail_type": "order.shipped"})
    assert run.run.status == "succeeded"


def test_http_parameters_keep_secrets_as_placeholders():
    run = EngineDriver(
        {
            "call": {
                "type": "http",
                "method": "POST",
                "url": "https://api.example.com/orders/${input.id}",
                "headers": {"Authorization": "Bearer ${secrets.token}"},
                "body": {"id": "${input.id}"},
                "secrets": {"token": "prod/api-token"},
            }
        },
        {"id": 7},
    )
    [dispatch] = run.dispatches()
    assert dispatch.step_type == "http"
    assert dispatch.input["url"] == "https://api.example.com/orders/7"
    assert dispatch.input["headers"] == {"Authorization": "Bearer {{secret:token}}"}
    assert dispatch.input["body"] == {"id": 7}
    assert dispatch.input["secrets"] == {"token": "prod/api-token"}
    assert dispatch.input["request_timeout_s"] == 10


def test_http_attempts_carry_the_workflows_allow_hosts():
    definition = Workflow.model_validate(
        {
            "name": "calls-inside",
            "allow_hosts": ["10.0.0.0/8", "Orders.Internal.Example.com"],
            "steps": {"call": {"type": "http", "url": "http://orders.internal.example.com/"}},
        }
    )
    run = EngineDriver(definition)
    [dispatch] = run.dispatches()
    assert dispatch.input["allow_hosts"] == ["10.0.0.0/8", "orders.internal.example.com"]
    # The step's own record keeps the request; the list is the definition's, not the input's.
    assert "allow_hosts" not in run.step("call").input


def test_agent_parameters_are_rendered():
    run = EngineDriver(
        {
            "ask": {
                "type": "agent",
                "model": "anthropic.claude",
                "prompt": "Summarise ${input.text}",
                "budget_usd": 0.5,
            }
        },
        {"text": "this"},
    )
    [dispatch] = run.dispatches()
    assert dispatch.input == {
        "model": "anthropic.claude",
        "prompt": "Summarise this",
        "system": None,
        "max_tokens": 1024,
        "budget_usd": 0.5,
    }


def test_a_shell_commands_values_are_single_arguments():
    # Input chooses values, never argument boundaries: "-n hi" stays one argument of echo.
    run = EngineDriver(
        {
            "say": {"type": "shell", "command": 'echo "to: ${input.who}" ${input.msg} ${input.n}'},
            "argv": {"type": "shell", "command": ["printf", "%s", "${input.msg}", "${input.obj}"]},
        },
        {"who": "Ada Lovelace", "msg": "-n hi; rm -rf / $(id)", "n": 3, "obj": {"a": [1]}},
    )
    say = next(d for d in run.dispatches() if d.key == "say")
    assert say.input["command"] == ["echo", "to: Ada Lovelace", "-n hi; rm -rf / $(id)", "3"]
    argv = next(d for d in run.dispatches() if d.key == "argv")
    assert argv.input["command"] == ["printf", "%s", "-n hi; rm -rf / $(id)", '{"a":[1]}']
