"""``stepwell validate`` finds a step's function that could not start, before any run: a
template's Handler naming a module or a function its code does not have, and a code-first
workflow's function written as text that the template does not deploy."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepwell.cli.main import main

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    CodeUri: functions/
Resources:
  ProvisionFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: {handler}
"""

STEPS = '''\
"""Step functions."""

from stepwell import step_handler


@step_handler
def provision(item, ctx):
    return item
'''


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "signup.py").write_text(STEPS)
    (tmp_path / "statemachines").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _validate(app: Path, handler: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (app / "template.yaml").write_text(TEMPLATE.format(handler=handler))
    code = main(["validate", "statemachines"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out


@pytest.mark.parametrize(
    ("handler", "why"),
    [
        (
            "signup.provisio",
            "names no function 'provisio' in functions/signup.py; did you mean 'provision'? "
            "(fix the Handler in template.yaml, or define the function there)",
        ),
        (
            "sign_up.provision",
            "names a module 'sign_up' that is neither in functions/ (its CodeUri) nor "
            "installed; did you mean 'signup'? (fix the Handler in template.yaml)",
        ),
    ],
)
def test_a_handler_that_could_not_start_is_a_problem_at_the_step(
    app: Path, handler: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (app / "statemachines" / "signup.yaml").write_text(
        "name: signup\nsteps:\n  provision:\n    function: ProvisionFunction\n"
    )
    code, out = _validate(app, handler, capsys)
    assert code == 1
    assert out.splitlines() == [
        "statemachines/signup.yaml:4:5: step 'provision': field 'function': function "
        f"'ProvisionFunction' cannot start: its Handler '{handler}' {why}"
    ]
    code, out = _validate(app, "signup.provision", capsys)
    assert (code, out.startswith("statemachines/signup.yaml: signup ok")) == (0, True)


def test_a_code_first_function_written_as_text_is_checked_against_the_template(
    app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (app / "statemachines" / "onboarding.py").write_text(
        "from stepwell import Context, workflow\n"
        "\n"
        "\n"
        '@workflow(name="onboarding")\n'
        "def onboarding(ctx: Context, input: dict) -> list:\n"
        '    one = ctx.task("one", function="ProvisionFunc", input=input)\n'
        '    many = ctx.for_each("many", "ProvisionFunctio", input["items"])\n'
        '    fine = ctx.task("fine", "ProvisionFunction", input)\n'
        '    computed = ctx.task("computed", function=input["function"])\n'
        "    return [one, many, fine, computed]\n"
    )
    code, out = _validate(app, "signup.provision", capsys)
    assert code == 1
    hint = (
        "template.yaml deploys no function of that logical id; did you mean "
        "'ProvisionFunction'? (add an AWS::Serverless::Function, or give an ARN)"
    )
    assert out.splitlines() == [
        f"statemachines/onboarding.py:6:36: step 'one': field 'function': unknown function "
        f"'ProvisionFunc': {hint}",
        f"statemachines/onboarding.py:7:33: step 'many': field 'function': unknown function "
        f"'ProvisionFunctio': {hint}",
    ]
