"""Release a service: build, check in parallel, ask for approval, deploy, bake, verify.

A code-first workflow: plain Python over a durable Context. Every ``ctx`` call is a step whose
result is stored; the function is replayed from the top whenever a step ends, and finished
steps return their stored results, so ``if``, ``for`` and ``try`` work as they read.
"""

from __future__ import annotations

from typing import Any

from stepwell import Context, workflow

RELEASE_SCHEMA = {
    "type": "object",
    "required": ["service", "ref"],
    "properties": {
        "service": {"type": "string", "minLength": 1},
        "ref": {"type": "string", "minLength": 1},
        "approver": {"type": "string", "format": "email"},
    },
}


def release_notes(ref: str, checks: list[dict[str, Any]]) -> str:
    """Inline code: its result is checkpointed, so a replay never runs it again."""
    passed = sum(1 for check in checks if check.get("passed"))
    return f"{ref}: {passed}/{len(checks)} check suites passed"


@workflow(name="release", input_schema=RELEASE_SCHEMA, timeout="7d")
def release(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
    """Build, check, approve, deploy, bake, verify."""
    service, ref = input["service"], input["ref"]
    build = ctx.task(
        "build",
        function="BuildFunction",
        input={"service": service, "ref": ref},
        retry={"max_attempts": 3, "interval": "2s"},
    )

    def suite(name: str) -> Any:
        def run(branch: Context) -> Any:
            return branch.task(
                name,
                function="RunChecksFunction",
                input={"suite": name, "artifact": build["artifact"]},
            )

        return run

    checks = ctx.parallel("checks", [suite("unit"), suite("integration"), suite("security")])
    notes = ctx.step("notes", release_notes, ref, checks)

    approval = ctx.approval(
        "approve",
        message=f"Release {service} {ref}? {notes}.",
        approvers=[input.get("approver", "release-manager@example.com")],
        timeout="1d",
        on_timeout="reject",
    )
    if not approval.approved:
        ctx.logger.info("release %s %s was not approved", service, ref)
        return {"service": service, "ref": ref, "released": False, "notes": notes}

    deployment = ctx.task(
        "deploy", function="DeployFunction", input={"service": service, "build": build}
    )
    ctx.sleep("bake", "10m")
    verified = ctx.task(
        "verify", function="VerifyFunction", input={"deployment": deployment["deployment_id"]}
    )
    return {
        "service": service,
        "ref": ref,
        "released": True,
        "deployment_id": deployment["deployment_id"],
        "healthy": verified["healthy"],
        "notes": notes,
        "released_at": ctx.now().isoformat(),
    }
