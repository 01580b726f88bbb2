"""Routes of workflows: the list, and one workflow's definition and versions."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from stepwell.api import errors
from stepwell.api.deps import current
from stepwell.api.models import (
    BrokenWorkflow,
    Graph,
    GraphEdge,
    GraphNode,
    WorkflowDetail,
    WorkflowList,
    triggers_view,
    workflow_summary,
)
from stepwell.api.openapi import MANAGEMENT, responses
from stepwell.asl.graph import machine_graph
from stepwell.code.workflow import CodeWorkflow
from stepwell.definition.models import Workflow
from stepwell.engine import compensation
from stepwell.store.port import Store

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]

WorkflowName = Annotated[str, Path(max_length=64, description="The workflow's name.")]


@router.get(
    "/workflows",
    summary="List workflows",
    description="Every workflow this deployment knows (statemachines/), with its version.",
    tags=["workflows"],
    security=MANAGEMENT,
    responses=responses(200, "The workflows"),
)
def list_workflows() -> WorkflowList:
    catalog = current().runtime.catalog
    found = sorted(catalog.all().values(), key=lambda w: w.name)
    broken = [
        BrokenWorkflow(name=name, problems=[str(p) for p in problems])
        for name, problems in sorted(catalog.broken().items())
    ]
    return WorkflowList(workflows=[workflow_summary(w) for w in found], broken=broken)


@router.get(
    "/workflows/<name>",
    summary="Show a workflow",
    description=(
        "The current definition (or, with ?version=, one a run pinned), its input schema, "
        "the edges of its graph and the versions runs have pinned."
    ),
    tags=["workflows"],
    security=MANAGEMENT,
    responses=responses(200, "The workflow", 404),
)
def get_workflow(
    name: WorkflowName,
    version: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
) -> WorkflowDetail:
    deps = current()
    deployed = deps.runtime.catalog.get(name)
    if deployed is None:
        raise errors.not_found(f"no workflow named {name!r}")
    deps.store.save_definition(deployed)
    workflow = deployed
    if version is not None and version != deployed.version:
        found = deps.store.get_definition(name, version)
        if found is None:
            raise errors.not_found(f"{name} has no saved version {version!r}")
        workflow = found
    summary = workflow_summary(workflow)
    return WorkflowDetail(
        **summary.model_dump(exclude={"triggers"}),
        triggers=triggers_view(workflow),
        input_schema=workflow.input_schema,
        definition=workflow.model_dump(mode="json", exclude_none=True),
        versions=versions(deps.store, deployed),
        upstream={key: list(before) for key, before in workflow.upstream.items()},
        graph=graph_of(workflow, deps.runtime.catalog.code(workflow)),
    )


def graph_of(workflow: Workflow, code: CodeWorkflow | None) -> Graph:
    """The whole definition as a graph: a YAML workflow's steps (with their compensations), a
    machine's states; a code-first workflow's steps are known only as its runs reach them."""
    if workflow.code is not None:
        document = getattr(code.function, "document", None) if code is not None else None
        if not isinstance(document, dict):
            return Graph()
        nodes, edges = machine_graph(document)
        return Graph(nodes=[GraphNode(**n) for n in nodes], edges=[GraphEdge(**e) for e in edges])
    graph = Graph()
    for key, step in workflow.steps.items():
        kind = "for_each" if getattr(step, "for_each", None) is not None else step.type
        graph.nodes.append(GraphNode(id=key, label=key, kind=kind, names=[key]))
        graph.edges += [GraphEdge(source=d, target=key, kind="depends_on") for d in step.depends_on]
        for rule in step.catch:
            graph.edges += [GraphEdge(source=key, target=t, kind="catch") for t in rule.then]
        if step.undo is not None:
            undo = compensation.key_of(key)
            graph.nodes.append(GraphNode(id=undo, label=undo, kind="compensate", names=[undo]))
            graph.edges.append(GraphEdge(source=key, target=undo, kind="compensate"))
    return graph


def versions(store: Store, workflow: Workflow) -> list[str]:
    """The saved versions of a workflow (the current one first), when the store can list them.

    The store port has no listing of versions; the DynamoDB store's items are read directly
    (one Query of the workflow's partition, keys only), any other store gives the current one.
    """
    listing = getattr(store, "definition_versions", None)
    if callable(listing):
        found: list[str] = list(listing(workflow.name))
    else:
        found = _dynamodb_versions(store, workflow.name)
    rest = sorted(v for v in set(found) if v != workflow.version)
    return [workflow.version, *rest]


def _dynamodb_versions(store: Any, name: str) -> list[str]:
    from stepwell.store import codec
    from stepwell.store.dynamodb import DynamoStore

    if not isinstance(store, DynamoStore):
        return []
    model = store.m.definition
    prefix = codec.definition_sk("")
    return [
        item.sk.removeprefix(prefix)
        for item in model.query(
            codec.definition_pk(name), model.sk.startswith(prefix), attributes_to_get=["pk", "sk"]
        )
    ]
