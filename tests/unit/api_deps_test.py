"""The API's dependencies follow the installed runtime; used tokens and idempotency in memory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyValidationError

from helpers.apigw import KEY, ApiWorld, api_workflows
from stepwell.api import deps, idempotency
from stepwell.api.claims import MemoryUsedTokens, Use
from stepwell.runtime import wiring
from stepwell.store.memory import MemoryStore


@pytest.fixture
def world() -> Iterator[ApiWorld]:
    api = ApiWorld(MemoryStore(), api_workflows())
    deps.use(None)  # follow the runtime, as a Lambda container does
    yield api
    api.close()


def test_dependencies_follow_the_installed_runtime(world: ApiWorld) -> None:
    found = deps.current()
    assert found.runtime is world.runtime and deps.current() is found
    assert list(found.keys()) == [KEY]  # the keys the approval links are signed with
    other = ApiWorld(MemoryStore(), api_workflows())
    deps.use(None)
    assert deps.current().runtime is other.runtime
    wiring.use(world.runtime)
    assert deps.current().runtime is world.runtime


def test_without_keys_anywhere_links_cannot_be_checked(world: ApiWorld) -> None:
    world.runtime.orchestrator.ports.approvals = object()  # type: ignore[assignment]
    keys = deps.signing_keys_of(world.runtime, {})
    with pytest.raises(deps.NoSigningKeys):
        keys()


def test_used_tokens_in_memory() -> None:
    used = MemoryUsedTokens()
    use = Use("n-1", 1_800_000_000, "approval", "run-1", "approve")
    other = Use("n-1", 1_800_000_000, "approval", "run-1", "approve")  # another click
    assert not used.used("n-1") and used.claim(use) and used.used("n-1")
    assert used.claim(use)  # the same request again (its first answer was lost): still its own
    assert not used.claim(other)
    used.release(other)  # not its claim: nothing changes
    assert used.used("n-1")
    used.release(use)
    assert used.claim(other)


def test_memory_idempotency_replays_and_refuses_another_body() -> None:
    layer = idempotency.MemoryLayer()
    calls: list[int] = []

    def start() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    first = idempotency.once(layer, start, workflow="w", key="k", body={"a": 1})
    again = idempotency.once(layer, start, workflow="w", key="k", body={"a": 1})
    assert first == again == {"n": 1} and len(calls) == 1
    with pytest.raises(IdempotencyValidationError):
        idempotency.once(layer, start, workflow="w", key="k", body={"a": 2})
    assert idempotency.once(layer, start, workflow="other", key="k", body={"a": 2}) == {"n": 2}
