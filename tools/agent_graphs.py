"""The agent-building tools, on the graph store: create, edit and read an agent graph, validate it,
and make the mechanical fixes. In a builder-bound session each acts on the bound graph only: an
empty agent id means it, another id is refused (`builder_session_graph_mismatch`).

A save that would add problems to the graph (see `agent_graphs/validation.py`) is refused with
the list of them, and nothing is saved; problems the graph already had do not block an edit.
"""

from typing import Optional

from pydantic import BaseModel, Field

from agent_graphs.edits import EditRefused, apply_edit
from agent_graphs.store import GraphNotFound, GraphStore, VersionConflict
from agent_graphs.validation import fix_graph, graph_problems
from models.agent_graph import (
    GRAPH_DESCRIPTION_MAX_CHARS,
    GRAPH_ID_MAX_CHARS,
    GRAPH_NAME_MAX_CHARS,
    MAX_GRAPH_LINKS,
    MAX_GRAPH_NODES,
    AgentGraph,
    GraphContent,
    GraphEdit,
    GraphLink,
    GraphNode,
    GraphProblem,
)
from tools.agent_guide import GUIDE_FIRST, REQUIRES_GUIDE
from tools.base import Tool, ToolContext, ToolError

AGENT_ID_DOC = "The agent's id; leave empty in the builder's chat (the agent open there)."
VERSION_DOC = "The version you read; the call is refused if the agent changed since."
LISTED_PROBLEMS = 50


class CreateAgentInput(BaseModel):
    name: str = Field(min_length=1, max_length=GRAPH_NAME_MAX_CHARS)
    description: str = Field(default="", max_length=GRAPH_DESCRIPTION_MAX_CHARS)
    nodes: list[GraphNode] = Field(default_factory=list, max_length=MAX_GRAPH_NODES)
    links: list[GraphLink] = Field(default_factory=list, max_length=MAX_GRAPH_LINKS)


class AgentTarget(BaseModel):
    agent_id: str = Field(default="", max_length=GRAPH_ID_MAX_CHARS, description=AGENT_ID_DOC)


class EditAgentInput(GraphEdit, AgentTarget):
    version: Optional[int] = Field(default=None, ge=1, description=VERSION_DOC)


class CheckAgentInput(AgentTarget):
    nodes: Optional[list[GraphNode]] = Field(default=None, max_length=MAX_GRAPH_NODES,
                                             description="A draft's nodes, to check instead of a saved agent.")
    links: Optional[list[GraphLink]] = Field(default=None, max_length=MAX_GRAPH_LINKS)


class FixAgentInput(CheckAgentInput):
    version: Optional[int] = Field(default=None, ge=1, description=VERSION_DOC)


def _store(context: ToolContext) -> GraphStore:
    if context.services.graphs is None:
        raise ToolError("unavailable", "Agent graphs are not available on this worker.")
    return context.services.graphs


def target_graph_id(agent_id: str, context: ToolContext, doing: str) -> str:
    """The graph a call acts on. In a builder-bound session: the bound graph, which an empty id
    means, and no other. Elsewhere: the id given (maybe empty)."""
    agent_id = agent_id.strip()
    bound = context.builder_graph_id
    if bound and not agent_id:
        return bound
    if bound and agent_id != bound:
        raise ToolError("builder_session_graph_mismatch", f"This chat is bound to the builder's current agent. "
                        f"{doing} a different agent is not allowed here — open that agent in the builder instead.")
    return agent_id


async def _saved_graph(context: ToolContext, graph_id: str) -> AgentGraph:
    graph = await _store(context).get(context.user_id, graph_id)
    if graph is None:  # someone else's graph answers the same
        raise ToolError("agent_not_found", f"There is no agent {graph_id!r}.")
    return graph


def _problem_lines(problems: list[GraphProblem]) -> str:
    lines = [f"- [{p.code}{', fixable' if p.fixable else ''}] {p.message}" for p in problems[:LISTED_PROBLEMS]]
    if len(problems) > LISTED_PROBLEMS:
        lines.append(f"({len(problems) - LISTED_PROBLEMS} more)")
    return "\n".join(lines)


def _refuse_new_problems(content: GraphContent, before: Optional[GraphContent] = None) -> None:
    known = {p.identity() for p in graph_problems(before.nodes, before.links)} if before else set()
    new = [p for p in graph_problems(content.nodes, content.links) if p.identity() not in known]
    if new:
        count = len(new)
        raise ToolError("validation_failed", f"Validation failed with {count} error{'s' if count != 1 else ''}; "
                        f"nothing was saved.\n{_problem_lines(new)}\nCorrect them (fix_agent_graph does the ones "
                        "marked fixable on a draft), then call again.")


def _saved(graph: AgentGraph, verb: str) -> dict:
    return {"message": f"{verb} agent '{graph.name}': version {graph.version}, {len(graph.nodes)} nodes, "
                       f"{len(graph.links)} links.",
            "agent_id": graph.id, "agent_name": graph.name, "graph_version": graph.version,
            "agent_page_link": f"/build?flowID={graph.id}"}


async def _update(context: ToolContext, graph: AgentGraph, content: GraphContent) -> AgentGraph:
    try:
        return await _store(context).update(context.user_id, graph.id, graph.version, content)
    except VersionConflict as conflict:
        raise _stale(conflict.current_version, graph.version)
    except GraphNotFound:
        raise ToolError("agent_not_found", f"There is no agent {graph.id!r}.")


def _stale(current: int, given: int) -> ToolError:
    return ToolError("version_conflict", f"The agent is at version {current}, not {given}: read it again with "
                                         "get_agent and make the change on that version.")


async def create_agent(arguments: CreateAgentInput, context: ToolContext) -> dict:
    content = GraphContent(**arguments.model_dump())
    _refuse_new_problems(content)
    return _saved(await _store(context).create(context.user_id, content), "Created")


async def edit_agent(arguments: EditAgentInput, context: ToolContext) -> dict:
    graph_id = target_graph_id(arguments.agent_id, context, "Editing")
    if not graph_id:
        raise ToolError("missing_agent_id", "Please provide the agent ID to edit.")
    graph = await _saved_graph(context, graph_id)
    if arguments.version is not None and arguments.version != graph.version:
        raise _stale(graph.version, arguments.version)
    try:
        edited = apply_edit(graph, arguments)
    except EditRefused as refusal:
        raise ToolError("invalid_edit", f"{refusal} Nothing was saved.")
    _refuse_new_problems(edited, graph)
    return _saved(await _update(context, graph, edited), "Saved")


async def get_agent(arguments: AgentTarget, context: ToolContext) -> dict:
    graph_id = target_graph_id(arguments.agent_id, context, "Reading")
    if not graph_id:
        raise ToolError("missing_agent_id", "Please provide the agent ID to read.")
    return (await _saved_graph(context, graph_id)).model_dump(mode="json")


async def _checked(arguments: CheckAgentInput, context: ToolContext, doing: str) -> tuple[Optional[AgentGraph],
                                                                                         GraphContent]:
    """The saved agent the call names, or the draft it carries (then no saved agent)."""
    if arguments.nodes is not None or arguments.links is not None:
        if arguments.agent_id.strip():
            raise ToolError("invalid_arguments", "Give agent_id or a draft's nodes and links, not both.")
        return None, GraphContent(name="draft", nodes=arguments.nodes or [], links=arguments.links or [])
    graph_id = target_graph_id(arguments.agent_id, context, doing)
    if not graph_id:
        raise ToolError("missing_agent_id", "Please provide the agent ID, or a draft's nodes and links.")
    graph = await _saved_graph(context, graph_id)
    return graph, graph


async def validate_agent_graph(arguments: CheckAgentInput, context: ToolContext) -> dict:
    graph, content = await _checked(arguments, context, "Validating")
    problems = graph_problems(content.nodes, content.links)
    message = (f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found." if problems
               else "No problems found.")
    result = {"valid": not problems, "message": message, "problems": [p.model_dump(mode="json", exclude_none=True)
                                                                       for p in problems]}
    if graph is not None:
        result.update(agent_id=graph.id, graph_version=graph.version)
    return result


async def fix_agent_graph(arguments: FixAgentInput, context: ToolContext) -> dict:
    graph, content = await _checked(arguments, context, "Fixing")
    if graph is not None and arguments.version is not None and arguments.version != graph.version:
        raise _stale(graph.version, arguments.version)
    fixed = fix_graph(content.nodes, content.links)
    result = {"fixed": fixed.fixed,
              "remaining_problems": [p.model_dump(mode="json", exclude_none=True) for p in fixed.remaining]}
    if graph is None:  # a draft: the fixed draft, for create_agent
        return {**result, "message": f"{len(fixed.fixed)} fixes made to the draft; nothing was saved.",
                "nodes": [n.model_dump(mode="json") for n in fixed.nodes],
                "links": [link.model_dump(mode="json") for link in fixed.links]}
    if not fixed.fixed:
        return {**result, "message": "Nothing to fix mechanically.", "agent_id": graph.id,
                "graph_version": graph.version}
    saved = await _update(context, graph, content.model_copy(update={"nodes": fixed.nodes, "links": fixed.links}))
    return {**result, **_saved(saved, f"Fixed {len(fixed.fixed)} problems; saved")}


CREATE = Tool(
    "create_agent",
    f"Saves a new agent graph (nodes and links) at version 1; refused with the problems if it is invalid. "
    f"{REQUIRES_GUIDE}",
    CreateAgentInput, create_agent, prerequisite=GUIDE_FIRST, effects_outside_workspace=True,
)
EDIT = Tool(
    "edit_agent",
    f"Changes a saved agent: removes links and nodes, changes, adds; saves the next version. {REQUIRES_GUIDE}",
    EditAgentInput, edit_agent, prerequisite=GUIDE_FIRST, effects_outside_workspace=True,
)
GET = Tool(
    "get_agent",
    "Reads a saved agent graph whole: its version, nodes (with input defaults) and links.",
    AgentTarget, get_agent,
)
VALIDATE = Tool(
    "validate_agent_graph",
    f"Lists what is wrong with a saved agent or a draft: repeated node ids, dangling links, links to missing "
    f"nodes, repeated links, cycles. {REQUIRES_GUIDE}",
    CheckAgentInput, validate_agent_graph, prerequisite=GUIDE_FIRST,
)
FIX = Tool(
    "fix_agent_graph",
    f"Makes the mechanical fixes validate_agent_graph names (a saved agent: saved as the next version; a draft: "
    f"returned) and lists what is left. {REQUIRES_GUIDE}",
    FixAgentInput, fix_agent_graph, prerequisite=GUIDE_FIRST, effects_outside_workspace=True,
)
TOOLS = (CREATE, EDIT, GET, VALIDATE, FIX)
