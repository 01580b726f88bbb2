"""``stepwell validate`` and ``stepwell schema``: exit codes, output format, no tracebacks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from stepwell.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "tests" / "definitions"
OK_LINE = re.compile(
    r"^statemachines/[a-z0-9-]+\.yaml: [a-z0-9-]+ ok \(\d+ steps?, version [0-9a-f]{16}\)$"
    r"|^statemachines/[a-z0-9_]+\.py: [a-z0-9-]+ ok \(code-first, version [0-9a-f]{16}\)$"
    r"|^statemachines/[a-z0-9-]+\.asl\.json: [a-z0-9-]+ ok "
    r"\(Step Functions machine, version [0-9a-f]{16}\)$"
)
PROBLEM_LINE = re.compile(r"^[^:]+:\d+:\d+: (step '[^']+': )?(field '[^']+': )?\S")
EXPECT = "# expect: "


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_examples_print_one_summary_line_each(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["validate", "statemachines"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    folder = ROOT / "statemachines"
    files = [*folder.glob("*.yaml"), *folder.glob("*.py"), *folder.glob("*.asl.json")]
    assert len(lines) == len(files)
    assert all(OK_LINE.match(line) for line in lines), lines
    assert any(
        line.startswith("statemachines/order-fulfilment.yaml: order-fulfilment ok (7 steps")
        for line in lines
    )
    assert err == ""


def test_broken_definitions_print_every_problem_and_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(DEFINITIONS)
    assert main(["validate", "broken"]) == 1
    out, err = capsys.readouterr()
    expected = [
        line.removeprefix(EXPECT)
        for path in sorted((DEFINITIONS / "broken").glob("*.yaml"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith(EXPECT)
    ]
    assert out.splitlines() == expected
    assert all(PROBLEM_LINE.match(line) for line in out.splitlines())
    assert re.fullmatch(r"\d+ problems in \d+ of \d+ files\n", err)
    assert "Traceback" not in out + err


def test_a_mix_prints_only_the_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "good.yaml", "name: good\nsteps:\n  a: {function: F}\n")
    bad = write(tmp_path, "bad.yaml", "name: bad\nsteps:\n  a: {function: F, timeout: soon}\n")
    assert main(["validate", str(tmp_path), "--no-template"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{bad}:3:20: step 'a': field 'timeout': 'soon' is not a duration: write a duration like "
        "30s, 5m, 2h, 7d, 1h30m or ISO 8601 such as PT5M"
    ]
    assert err == "1 problem in 1 of 2 files\n"


def test_workflow_names_must_be_unique_across_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = write(tmp_path, "a.yaml", "name: orders\nsteps:\n  a: {function: F}\n")
    second = write(tmp_path, "b.yaml", "# copy\nname: orders\nsteps:\n  b: {function: G}\n")
    assert main(["validate", str(first), str(second), "--no-template"]) == 1
    out, _ = capsys.readouterr()
    assert out.splitlines() == [
        f"{second}:2:1: field 'name': workflow name 'orders' is already used by {first}: "
        "give each workflow its own name"
    ]


def test_a_task_whose_function_the_template_does_not_deploy_is_a_located_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # template.yaml is checked by default
    flow = write(
        tmp_path,
        "pay.yaml",
        "name: pay\nsteps:\n  charge:\n    function: ChargeCard\n"
        "  fine:\n    function: ChargeCardFunction\n"
        "  remote:\n    function: arn:aws:lambda:eu-west-1:123456789012:function:x\n",
    )
    assert main(["validate", str(flow)]) == 1
    out, _ = capsys.readouterr()
    assert out.splitlines() == [
        f"{flow}:4:5: step 'charge': field 'function': unknown function 'ChargeCard': "
        "template.yaml deploys no function of that logical id; did you mean "
        "'ChargeCardFunction'? (add an AWS::Serverless::Function, or give an ARN)"
    ]
    assert main(["validate", str(flow), "--no-template"]) == 0


def test_a_path_that_does_not_exist_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["validate", str(missing)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"stepwell validate: no such file or folder: {missing}\n"


def test_a_folder_without_definitions_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tmp_path)]) == 2
    assert "no workflow files" in capsys.readouterr().err


def test_unreadable_content_is_a_problem_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00\x01")
    write(tmp_path, "syntax.yaml", "name: x\nsteps: [\n")
    assert main(["validate", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2
    assert all(PROBLEM_LINE.match(line) for line in out.splitlines())
    assert "Traceback" not in out + err


def test_validate_needs_a_path(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["validate"])
    assert caught.value.code == 2
    assert "PATH" in capsys.readouterr().err


def test_schema_prints_the_json_schema_of_the_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "Stepwell workflow"
    assert {"name", "steps", "triggers", "allow_hosts"} <= set(schema["properties"])
    jsonschema.Draft202012Validator.check_schema(schema)


def code_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], declared: str, body: str
) -> tuple[Path, list[str]]:
    """``stepwell validate`` of a code-first file: its path, and the lines it printed."""
    code = write(
        tmp_path,
        "flow.py",
        f"from stepwell import workflow\n\n\n@workflow({declared})\ndef flow(ctx, input):\n"
        f"    return {body}\n",
    )
    assert main(["validate", str(tmp_path), "--no-template"]) == 1
    return code, sorted(capsys.readouterr().out.splitlines())


@pytest.mark.parametrize(
    ("declared", "body", "expected"),
    [
        (
            "name='calls', allow_hosts=['10.0.0.0/8', 'internal.example.com:8443']",
            "ctx.http('get', url='http://internal.example.com:8443/')",
            [
                "field 'allow_hosts[1]': 'internal.example.com:8443': an entry names a host, "
                "not a port: write 'internal.example.com'"
            ],
        ),
        (
            "name='charge', concurrency={'key': '${context.x}', 'limit': 2}, "
            "singleton={'mode': 'skip'}",
            "ctx.task('charge', function='ChargeCardFunction')",
            [
                "field 'concurrency.key': ${context.x} reads 'context', but it is decided as a "
                "run starts, from its input alone: read input.<field>",
                "field 'singleton': a workflow has one of concurrency, singleton and throttle, "
                "not concurrency and singleton: keep one of them",
            ],
        ),
        (
            "name='asks', notify={'email': {'subjet': 'Pay?'}, "
            "'slack': {'webhook': 'https://hooks.slack.com/x'}}",
            "ctx.approval('ok', approvers=['ann@example.com'])",
            [
                "field 'notify.email.subjet': Extra inputs are not permitted",
                "field 'notify.slack.webhook': a webhook's URL is a secret: put it in Secrets "
                "Manager (named <stack>/...) and give the secret's name here",
            ],
        ),
        (
            "name='ship', cancel_on=[{'source': 'orders', 'detail_type': 'order.cancelled', "
            "'correlate': {'event': 'detail.order_id', 'equals': '${steps.pack.output}'}}]",
            "ctx.task('pack', function='ChargeCardFunction')",
            [
                "field 'cancel_on[0].correlate.equals': ${steps.pack.output} reads 'steps', "
                "which is not defined (expressions see input, context)",
            ],
        ),
        (
            "name='ship', cancel_on=[{'source': 'orders'}]",
            "ctx.task('pack', function='ChargeCardFunction')",
            [
                "field 'cancel_on[0].correlate': Field required",
                "field 'cancel_on[0].detail_type': Field required",
            ],
        ),
        (
            "name='ship', cancel_on={'source': 'orders'}",
            "ctx.task('pack', function='ChargeCardFunction')",
            ["field 'cancel_on': Input should be a valid list"],
        ),
    ],
    ids=["allow_hosts", "flow_control", "notify", "cancel_on", "cancel_on_fields", "not_a_list"],
)
def test_a_code_workflows_fields_are_checked_like_yamls(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    declared: str,
    body: str,
    expected: list[str],
) -> None:
    code, problems = code_problems(tmp_path, capsys, declared, body)
    assert problems == [f"{code}:4:1: {line}" for line in expected]


CONCURRENCY_CALLS = """\
from stepwell import workflow


def refund(c, input):
    return c.task("refund", "RefundChargeFunction", input, None, None, None, ("m", 0))


@workflow(name="charges")
def charges(ctx, input):
    ctx.task("fine", "ChargeCardFunction", input, concurrency=(input["merchant"], 3))
    ctx.task("computed", "ChargeCardFunction", concurrency=limits_of(input))
    ctx.task("text", "ChargeCardFunction", concurrency=(input["merchant"], "3"))
    ctx.task(name="expression", function="F", concurrency=("${input.merchant}", 2))
    ctx.task("mapping", "ChargeCardFunction", concurrency={"key": "m", "limit": 2})
    return refund(ctx, input)
"""


def test_a_tasks_literal_concurrency_is_checked_ahead_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = write(tmp_path, "charges.py", CONCURRENCY_CALLS)
    assert main(["validate", str(tmp_path), "--no-template"]) == 1
    fix = "write it as (key, limit), e.g. concurrency=(input['merchant'], 3)"
    assert capsys.readouterr().out.splitlines() == [
        f"{code}:5:78: step 'refund': field 'concurrency': (\"m\", 0): its limit 0 is not a "
        f"whole number from 1 to 1000: {fix}",
        f"{code}:12:56: step 'text': field 'concurrency': (input[\"merchant\"], \"3\"): its "
        f"limit '3' is not a whole number from 1 to 1000: {fix}",
        f"{code}:13:59: step 'expression': field 'concurrency': (\"${{input.merchant}}\", 2): "
        f"its key '${{input.merchant}}' is an expression, but the code computes the key as "
        f"text: {fix}",
        f'{code}:14:59: step \'mapping\': field \'concurrency\': {{"key": "m", "limit": 2}}: '
        f"not a pair (key, limit): {fix}",
    ]


def test_every_example_satisfies_the_published_schema(capsys: pytest.CaptureFixture[str]) -> None:
    main(["schema"])
    validator = jsonschema.Draft202012Validator(json.loads(capsys.readouterr().out))
    for path in sorted((ROOT / "statemachines").glob("*.yaml")):
        document = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        errors = [e.message for e in validator.iter_errors(json.loads(json.dumps(document)))]
        assert errors == [], path.name


def test_a_step_function_may_be_named_by_its_function_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = (ROOT / "template.yaml").read_text()
    named = template.replace(
        "      Handler: orders.charge_card\n",
        "      Handler: orders.charge_card\n      FunctionName: charge-card-by-hand\n",
    )
    assert named != template
    (tmp_path / "template.yaml").write_text(named)
    (tmp_path / "shared").symlink_to(ROOT / "shared")  # the nested engine, where it is named
    flow = write(
        tmp_path, "pay.yaml", "name: pay\nsteps:\n  charge:\n    function: charge-card-by-hand\n"
    )
    args = ["validate", str(flow), "--template", str(tmp_path / "template.yaml")]
    assert main(args) == 0, capsys.readouterr().out


def test_a_machines_task_naming_an_unknown_function_is_a_located_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # template.yaml is checked by default
    machine = tmp_path / "pay.asl.json"
    machine.write_text(
        '{"StartAt": "Charge", "States": {\n'
        '  "Charge": {"Type": "Task", "Resource": "ChargeCard", "Next": "Ok"},\n'
        '  "Ok": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",\n'
        '         "Parameters": {"FunctionName": "ChargeCardFunction"}, "End": true}}}\n'
    )
    assert main(["validate", str(machine)]) == 1
    out, _ = capsys.readouterr()
    assert out.splitlines() == [
        f"{machine}:2:30: step 'Charge': field 'Resource': unknown function 'ChargeCard': "
        "template.yaml deploys no function of that logical id; did you mean "
        "'ChargeCardFunction'? (add an AWS::Serverless::Function, or give an ARN)"
    ]


def test_a_jsonata_machines_function_name_is_checked_and_a_machine_name_is_spelled_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    machine = tmp_path / "Pay_Orders.asl.json"
    task = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True}
    machine.write_text(
        json.dumps(
            {
                "QueryLanguage": "JSONata",
                "StartAt": "Charge",
                "States": {"Charge": task | {"Arguments": {"FunctionName": "ChargeCard"}}},
            }
        )
    )
    assert main(["validate", str(machine)]) == 1
    out, _ = capsys.readouterr()
    assert "field 'FunctionName': unknown function 'ChargeCard'" in out
    task["Arguments"] = {"FunctionName": "ChargeCardFunction", "Payload": "{% $states.input %}"}
    machine.write_text(
        json.dumps({"QueryLanguage": "JSONata", "StartAt": "Charge", "States": {"Charge": task}})
    )
    assert main(["validate", str(machine)]) == 0
    out, _ = capsys.readouterr()
    assert (
        f"{machine}: pay-orders ok (Step Functions machine 'Pay_Orders', its name spelled as "
        "a workflow name, version" in out
    )


def test_every_stage_is_checked_in_one_round(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A field pydantic refuses does not hide the template's check of the step's function, nor
    # the fields of a step that lacks a required one.
    monkeypatch.chdir(ROOT)
    flow = write(
        tmp_path,
        "b.yaml",
        "name: pay\nsteps:\n  charge:\n    function: ChargeCard\n    timeout: soon\n"
        "  tell:\n    type: notify\n    depends_on: charge\n    detail: ${stepz.charge}\n"
        "    detail_typ: paid\n",
    )
    assert main(["validate", str(flow)]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [
        f"{flow}:4:5",
        f"{flow}:5:5",
        f"{flow}:6:3",
        f"{flow}:9:5",
        f"{flow}:10:5",
    ]
    assert "unknown function 'ChargeCard'" in lines[0]
    assert "'soon' is not a duration" in lines[1]
    assert "missing required field 'detail_type'" in lines[2]
    assert "reads 'stepz', which is not defined" in lines[3]
    assert "unknown field 'detail_typ'; did you mean 'detail_type'?" in lines[4]
    assert err == "5 problems in 1 of 1 file\n"


def test_every_problem_of_a_code_first_workflow_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = write(
        tmp_path,
        "flow.py",
        "from stepwell import workflow\n\n\n"
        '@workflow(name="Bad Name", input_schema={"type": "nope"}, timeout="soon")\n'
        "def flow(ctx, input):\n    return input\n",
    )
    assert main(["validate", str(flow), "--no-template"]) == 1
    fields = [
        line.split("field '")[1].split("'")[0] for line in capsys.readouterr().out.split("\n")[:-1]
    ]
    assert fields == ["input_schema", "name", "timeout"]


def test_an_error_name_no_failure_carries_is_a_warning_that_keeps_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the template resolves ChargeCardFunction to its module
    flow = write(
        tmp_path,
        "pay.yaml",
        "name: pay\nsteps:\n"
        "  charge:\n    function: ChargeCardFunction\n"
        "    retry: {retry_on: [PaymentDeclinedTemporary, TimeoutError], non_retryable:\n"
        "      [CardDeclined]}\n"
        "  hook:\n    type: http\n    depends_on: charge\n    url: https://example.com\n"
        "    retry: {retry_on: [HttpServerError, ConnectionError]}\n"
        "    catch: [{errors: HttpThrottled}]\n",
    )
    assert main(["validate", str(flow)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith(
        f"{flow}:5:24: warning: step 'charge': field 'retry.retry_on[0]': no failure of this "
        "step is named 'PaymentDeclinedTemporary'; did you mean 'PaymentDeclinedTemporarily'?"
    )
    assert lines[1].startswith(
        f"{flow}:11:41: warning: step 'hook': field 'retry.retry_on[1]': no failure of this "
        "step is named 'ConnectionError'; did you mean 'HttpConnectionError'? (an http step "
        "fails with HttpAddressRefused, HttpBadUrl, HttpConnectionError,"
    )
    assert lines[2].startswith(f"{flow}: pay ok (2 steps")
    assert err == "2 warnings\n"
    # Beside a problem, warnings are counted too; without a template, a task is not checked.
    flow.write_text(flow.read_text().replace("function: ChargeCardFunction", "function: Nope"))
    assert main(["validate", str(flow)]) == 1
    assert capsys.readouterr().err == "1 problem and 1 warning in 1 of 1 file\n"


def test_a_machines_error_names_are_checked_against_its_functions_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    text = (ROOT / "statemachines" / "order-machine.asl.json").read_text()
    typo = text.replace('"PaymentDeclinedTemporarily"', '"PaymentDeclinedTemporary"')
    assert typo != text
    machine = write(tmp_path, "order-typo.asl.json", typo)
    assert main(["validate", str(machine)]) == 0
    out, err = capsys.readouterr()
    warning, ok = out.splitlines()
    assert warning.startswith(
        f"{machine}:100:13: warning: step 'Charge': field 'Retry[0].ErrorEquals[0]': no failure "
        "of this state is named 'PaymentDeclinedTemporary'; did you mean "
        "'PaymentDeclinedTemporarily'?"
    )
    assert ok.startswith(f"{machine}: order-typo ok")
    assert err == "1 warning\n"
