"""Workflows played on the DynamoDB store with seeded faults, driven as AWS drives them.

A careful client starts runs through the API (an ``Idempotency-Key``, retried on errors);
people decide approvals and answer forms through the signed links the bus carries (again after
an error); the engine's rule hands the bus's events to the event waits (again until a delivery
succeeds, sometimes twice); step results go through the runner's result path; a few invokes
are lost and a few results delivered twice; the minute sweep is the backstop.
:func:`check_runs` then checks what a fault may never do: a step completed twice, a dispatch a
committed decision owed never carried out, an attempt sent twice or charged without cause.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from helpers.apigw import (
    API_URL,
    KEY,
    ApiResponse,
    LambdaContext,
    http_event,
    load_handler,
    to_response,
)
from helpers.faults import DynamoFaults
from stepwell import signing
from stepwell.api import deps
from stepwell.api.links import link_id
from stepwell.catalog import Catalog
from stepwell.engine.commands import DispatchAttempt, EmitEvent
from stepwell.engine.events import Event, StepFailed, StepSucceeded
from stepwell.local.inprocess import InProcessWorld
from stepwell.runtime import wiring
from stepwell.runtime.approvals import ApprovalLinks, LinkedBus
from stepwell.runtime.orchestrator import Ports
from stepwell.runtime.publishing import Workflows
from stepwell.runtime.results import deliver
from stepwell.runtime.timers import sweep
from stepwell.runtime.wiring import Runtime
from stepwell.store.dynamodb import DynamoStore
from stepwell.store.event_waits import event_waits_for

JSON = {"accept": "application/json"}
FAULTS = {"before": {"before": 0.2}, "after": {"after": 0.2}}
"""A fifth of DynamoDB calls failing before they take effect, or after (their answers lost)."""
Attempt = tuple[str, str, int]
Answer = Callable[[dict[str, Any]], Any]
"""What a person answers a form (``input.requested``'s detail) with."""


def faulty(store: DynamoStore, **rates: Any) -> DynamoFaults:
    """Seeded faults (:class:`DynamoFaults`' arguments) on ``store``'s DynamoDB client."""
    faults = DynamoFaults(**rates)
    faults.attach(store.client)
    return faults


class FaultPlay:
    """``world``'s workflows on ``store`` (whose client carries ``faults``), played as AWS
    plays them (see the module)."""

    def __init__(
        self, store: DynamoStore, world: InProcessWorld, seed: int, faults: DynamoFaults
    ) -> None:
        self.store, self.world, self.faults = store, world, faults
        world.store = store  # type: ignore[assignment]
        world.approver = None
        orchestrator = world.orchestrator
        orchestrator.store = store
        orchestrator.event_waits = event_waits_for(store)
        links = ApprovalLinks(world, lambda: [KEY], API_URL, world.clock)
        orchestrator.ports = Ports(world, world, LinkedBus(world, links), links)
        runtime = Runtime(
            orchestrator,
            store,
            world.clock,
            Workflows(store, world.clock),
            Catalog.of(world.workflows),
        )
        wiring.use(runtime)
        deps.use(deps.for_runtime(runtime, {}))
        self.handler = load_handler()
        self.dispatched: Counter[Attempt] = Counter()
        self.lost: set[Attempt] = set()
        self.invoked: Counter[Attempt] = Counter()
        """How many times each attempt's invocation ran (twice when delivered twice)."""
        self.clicks: dict[Attempt, list[int]] = {}
        self.answers: dict[Attempt, list[int]] = {}
        self.answer: Answer | None = None
        """How people answer forms (None: no form is answered)."""
        self.acknowledged: dict[str, str] = {}
        self.actors: list[Callable[[], bool]] = []
        """More of what happens between deliveries (True when something did)."""
        self.bus_events: list[dict[str, Any]] = []
        """Every event put on the bus that the engine's rule hands to event waits."""
        self._undelivered: list[dict[str, Any]] = []
        self.deliveries = random.Random(seed)
        real_dispatch, real_run, real_emit = world.dispatch, world._run_attempt, world.emit

        def dispatch(command: DispatchAttempt) -> None:
            self.dispatched[(command.run_id, command.key, command.attempt)] += 1
            real_dispatch(command)

        def run_attempt(command: DispatchAttempt) -> None:
            roll = self.deliveries.random()
            if roll < 0.03:
                self.lost.add((command.run_id, command.key, command.attempt))
                return  # the invoke was lost: the attempt's lease finds it
            attempt = (command.run_id, command.key, command.attempt)
            for _ in range(2 if roll > 0.97 else 1):  # twice: Lambda's at-least-once delivery
                self.invoked[attempt] += 1
                real_run(command)

        def send(run_id: str, event: Event) -> None:
            if isinstance(event, StepSucceeded | StepFailed):
                deliver(orchestrator, run_id, event)  # the step side's result path
            else:
                orchestrator.handle(run_id, event)

        def emit(command: EmitEvent) -> None:
            real_emit(command)
            if command.source not in (None, "stepwell"):
                self._on_bus(command)

        world.dispatch = dispatch  # type: ignore[method-assign]
        world._run_attempt = run_attempt  # type: ignore[method-assign]
        world.send = send  # type: ignore[method-assign]
        world.emit = emit  # type: ignore[method-assign]

    def close(self) -> None:
        wiring.use(None)
        deps.use(None)

    def post(self, path: str, body: Any = None, **options: Any) -> ApiResponse:
        event = http_event("POST", path, body=body, **options)
        return to_response(self.handler(event, LambdaContext()))

    def start(self, name: str, input: Any, key: str) -> str:
        """A careful client: the same request (and key) until the API acknowledges it."""
        for _ in range(30):
            response = self.post(
                f"/workflows/{name}/runs", {"input": input}, headers={"Idempotency-Key": key}
            )
            if response.status == 201:
                self.acknowledged[key] = response.json()["run_id"]
                return self.acknowledged[key]
            assert response.status >= 500, response.text  # only an error is worth retrying
        raise AssertionError(f"the start of {key} was never acknowledged")

    def send_event(self, source: str, detail_type: str, detail: Any, id: str) -> None:
        """A careful sender: ``POST /events`` with its own id until it is accepted."""
        body = {"source": source, "detail_type": detail_type, "detail": detail, "id": id}
        for _ in range(30):
            response = self.post("/events", body)
            if response.status == 202:
                return
            assert response.status >= 500, response.text
        raise AssertionError(f"the event {id} was never accepted")

    def step(self, run_id: str, key: str) -> Any:
        """A step's record as it is (read without faults), or None."""
        enabled, self.faults.enabled = self.faults.enabled, False
        try:
            return self.store.load(run_id, [key]).steps.get(key)
        finally:
            self.faults.enabled = enabled

    def _on_bus(self, command: EmitEvent) -> None:
        at: datetime = command.time or self.world.clock.now()
        event = {
            "id": command.event_id or f"bus-{len(self.bus_events)}",
            "source": command.source,
            "detail_type": command.detail_type,
            "time": at.isoformat().replace("+00:00", "Z"),
            "detail": command.detail,
        }
        self.bus_events.append(event)
        self._undelivered.append(event)

    def deliver_events(self) -> bool:
        """The engine's rule: each event on the bus to the event waits, again while its
        delivery fails (EventBridge retries an invoke that failed), a few twice."""
        moved = False
        for event in list(self._undelivered):
            try:
                self.world.orchestrator.receive_event(event)
                if self.deliveries.random() > 0.9:
                    self.world.orchestrator.receive_event(event)
            except Exception:
                continue
            self._undelivered.remove(event)
            moved = True
        return moved

    def _newest_links(self, detail_type: str, field: str) -> dict[Attempt, str]:
        newest: dict[Attempt, str] = {}
        for event in self.world.events:
            if event.detail_type == detail_type:
                d = event.detail
                url = d["links"][0][field]
                newest[(d["run_id"], d["step"], d["attempt"])] = url.rsplit("/", 1)[-1]
        return newest

    def _recorded(self, attempt: Attempt, token: str, waiting_for: str | None) -> bool:
        """Whether a 409 on ``token``'s link means its use is recorded, or the wait (of
        ``waiting_for``; None: none) closed."""
        step = self.step(attempt[0], attempt[1])
        claims = signing.verify(token, [KEY], self.world.clock.now())
        return any(d.get("link") == link_id(claims) for d in step.decisions) or (
            waiting_for is not None and step.waiting_for != waiting_for
        )

    def click(self) -> bool:
        """Approvers click the newest approve link of each approval not decided yet (again
        after an error); a 409 must mean the link's decision is recorded, or the approval
        closed."""
        moved = False
        for attempt, token in self._newest_links("approval.requested", "approve_url").items():
            answers = self.clicks.setdefault(attempt, [])
            if answers and answers[-1] in (200, 409):
                continue
            response = self.post(f"/approvals/{token}", form={}, headers=JSON)
            answers.append(response.status)
            moved = True
            if response.status == 409:
                assert self._recorded(attempt, token, "approval"), (attempt, response.text)
        return moved

    def fill_in(self) -> bool:
        """People answer the newest form link of each form not answered yet (again after an
        error), with :attr:`answer`; a 409 must mean the link's answer is recorded."""
        if self.answer is None:
            return False
        moved = False
        requests = {
            (e.detail["run_id"], e.detail["step"], e.detail["attempt"]): e.detail
            for e in self.world.events
            if e.detail_type == "input.requested"
        }
        for attempt, token in self._newest_links("input.requested", "form_url").items():
            answers = self.answers.setdefault(attempt, [])
            if answers and answers[-1] in (200, 409):
                continue
            response = self.post(f"/inputs/{token}", self.answer(requests[attempt]), headers=JSON)
            answers.append(response.status)
            moved = True
            if response.status == 409:
                # A form's one link: only its own answer closes it.
                assert self._recorded(attempt, token, None), (attempt, response.text)
            else:
                assert response.status in (200,) or response.status >= 500, response.text
        return moved

    def act(self) -> bool:
        """What people and systems do between deliveries; True when any of it happened."""
        done = [self.deliver_events(), self.click(), self.fill_in()]
        return any(done + [actor() for actor in self.actors])

    def play(self) -> None:
        """Deliver what is in flight (an invocation that raises loses what it did not write);
        people act; when nothing is left, time passes to the next due time and the minute
        sweep runs."""
        for _ in range(400):
            try:
                self.world.run_until_idle(virtual_time=False)
            except Exception:
                continue
            if self.act() or self.world.dispatched or self.world.pending_decisions:
                continue
            self.faults.enabled = False
            runs = [self.store.get_run(r) for r in self.acknowledged.values()]
            due = self.world.next_due()
            self.faults.enabled = True
            if all(r is not None and r.terminal for r in runs):
                return
            assert due is not None, "an unfinished run must have something due"
            self.world.clock.set(max(due, self.world.clock.now()) + timedelta(seconds=60))
            self.world.timers.clear()  # timer messages may be lost too: the sweep is the backstop
            try:
                sweep(self.world.orchestrator, self.store)
            except Exception:
                continue
        raise AssertionError("the runs never finished")


def check_runs(play: FaultPlay, dynamodb: Any, statuses: dict[str, str]) -> list[Any]:
    """Each acknowledged run (and each other run named by its id) ended as ``statuses`` says
    (its key or id -> status) and no fault showed: no step completed twice, every dispatch a
    committed decision owed carried out and sent once, an attempt lost or charged a timeout
    only if its invoke was lost, a TTL on every item. The runs, in ``statuses``' order."""
    store = play.store
    play.faults.enabled = False
    assert sum(play.faults.injected.values()) > 0
    print(f"\ninjected: {sum(play.faults.injected.values())} {dict(play.faults.injected)}")
    assert set(play.acknowledged) <= set(statuses), play.acknowledged
    runs = []
    for key, status in statuses.items():
        run_id = play.acknowledged.get(key, key)
        run = store.get_run(run_id)
        assert run is not None and run.status == status, (key, run, play.faults.injected)
        runs.append(run)
        timeline = store.timeline(run_id, limit=10_000).items
        completed = Counter(e.step for e in timeline if e.type == "step_completed")
        assert all(count == 1 for count in completed.values()), (key, completed)
        owed = {(run_id, e.step, e.attempt) for e in timeline if e.type == "step_dispatched"}
        assert owed <= set(play.dispatched), owed - set(play.dispatched)
        charged = {
            (run_id, e.step, e.attempt)
            for e in timeline
            if e.type == "attempt_lost" or (e.data or {}).get("error") == "StepTimedOut"
        }
        assert charged <= play.lost, charged - play.lost
        items = dynamodb.query(
            TableName=store.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"RUN#{run_id}"}},
        )["Items"]
        assert items and all("expires_at" in item for item in items), run_id
    repeated = [k for k, v in play.dispatched.items() if v > 1]
    assert not repeated, repeated  # a lost attempt is sent again as a new attempt, never the same
    return runs
