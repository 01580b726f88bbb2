"""Step functions of the release example (statemachines/release.py).

They stand in for a real build system, test runner and deployer: each returns what the real
one would, derived from its input, so the example runs anywhere.
"""

from __future__ import annotations

import hashlib
from typing import Any

from stepwell import StepContext, step_handler


def _digest(*parts: Any) -> str:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()[:10]


@step_handler
def build(request: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    """Build the service at a ref; the artifact name is stable per ref."""
    artifact = (
        f"{request['service']}-{request['ref']}-{_digest(request['service'], request['ref'])}"
    )
    return {"artifact": artifact, "ref": request["ref"]}


@step_handler
def run_checks(request: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    """Run one check suite against the artifact."""
    return {"suite": request["suite"], "artifact": request["artifact"], "passed": True}


@step_handler
def deploy(request: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    """Deploy the artifact; the idempotency key makes a repeated delivery the same deployment."""
    return {
        "deployment_id": "dep-" + _digest(ctx.idempotency_key),
        "artifact": request["build"]["artifact"],
    }


@step_handler
def verify(request: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    """Check the deployment's health after it baked."""
    return {"deployment_id": request["deployment"], "healthy": True}


HANDLERS = {
    "BuildFunction": build,
    "RunChecksFunction": run_checks,
    "DeployFunction": deploy,
    "VerifyFunction": verify,
}
