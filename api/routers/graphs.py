"""/api/graphs: the caller's agent graphs (create, list, read, update). An update names the version
it was made from; if the graph has moved on since, it is a 409 with the current version, and the
caller reads the graph again. Someone else's graph answers exactly like a missing one."""

from typing import Annotated

from fastapi import APIRouter, Query

from agent_graphs.store import GraphNotFound, VersionConflict
from api.auth import CurrentUser
from api.deps import MAX_OFFSET, DbDep, GraphStoreDep, SettingsDep
from api.errors import ApiError, not_found
from billing.accounts import open_account
from models.agent_graph import AgentGraph, GraphContent, GraphSummary
from models.api import CreateGraphRequest, ErrorResponse, GraphPage, UpdateGraphRequest

router = APIRouter(prefix="/api/graphs", tags=["graphs"])

ERRORS = {401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}}
GRAPH = "agent graph"


def _content(body: CreateGraphRequest) -> GraphContent:
    return GraphContent.model_validate(body.model_dump(include={"name", "description", "nodes", "links"}))


@router.post("", status_code=201, response_model=AgentGraph, responses={401: {"model": ErrorResponse}})
async def create_graph(body: CreateGraphRequest, user: CurrentUser, db: DbDep, settings: SettingsDep,
                       graphs: GraphStoreDep) -> AgentGraph:
    """Saves a new graph, at version 1."""
    await open_account(db, user.id, settings.initial_credits, email=user.email)
    await db.commit()
    return await graphs.create(user.id, _content(body))


@router.get("", response_model=GraphPage, responses={401: {"model": ErrorResponse}})
async def list_graphs(user: CurrentUser, graphs: GraphStoreDep, limit: Annotated[int, Query(ge=1, le=100)] = 20,
                      offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> GraphPage:
    """The caller's graphs, most recently changed first."""
    page, total = await graphs.list(user.id, limit, offset)
    return GraphPage(graphs=[GraphSummary.of(g) for g in page], total=total, limit=limit, offset=offset)


@router.get("/{graph_id}", response_model=AgentGraph, responses=ERRORS)
async def get_graph(graph_id: str, user: CurrentUser, graphs: GraphStoreDep) -> AgentGraph:
    graph = await graphs.get(user.id, graph_id)
    if graph is None:
        raise not_found(GRAPH)
    return graph


@router.put("/{graph_id}", response_model=AgentGraph, responses={**ERRORS, 409: {"model": ErrorResponse}})
async def update_graph(graph_id: str, body: UpdateGraphRequest, user: CurrentUser,
                       graphs: GraphStoreDep) -> AgentGraph:
    """Replaces the graph's content, saved as the next version, if `version` is still its latest;
    else `409 version_conflict` with `details.current_version`."""
    try:
        return await graphs.update(user.id, graph_id, body.version, _content(body))
    except GraphNotFound:
        raise not_found(GRAPH)
    except VersionConflict as conflict:
        raise ApiError(409, "version_conflict", f"The graph is at version {conflict.current_version}, not "
                       f"{body.version}: read it again and apply the change to that version.",
                       details={"current_version": conflict.current_version})
