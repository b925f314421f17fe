"""The agent-building guide, and the gate in front of the tools that write agent JSON: they refuse
until the guide was read once in the session (seed notes §7). Any earlier call of the guide tool
counts, whatever its result, and it is never needed again; builder-bound sessions pass, since the
guide is in their system prompt."""

from pydantic import BaseModel

from agent_graphs.guide import load_guide
from tools.base import Prerequisite, Tool, ToolContext, ToolError

GUIDE_TOOL = "get_agent_building_guide"
GATED_TOOLS = ("create_agent", "edit_agent", "validate_agent_graph", "fix_agent_graph")
GUIDE_FIRST = Prerequisite(
    GUIDE_TOOL, must_succeed=False, waived_for_builder_sessions=True,
    refusal="Call get_agent_building_guide first, then retry {tool_name}. The guide documents required block ids, "
            "input/output schemas, link semantics, and AgentExecutorBlock / MCPToolBlock usage — generating agent "
            "JSON without it produces schema mismatches.")
# The sentence each gated tool's description ends with.
REQUIRES_GUIDE = "Requires get_agent_building_guide first (refuses otherwise)."


class NoInput(BaseModel):
    pass


async def get_agent_building_guide(arguments: NoInput, context: ToolContext) -> str:
    try:
        return load_guide()
    except OSError:
        raise ToolError("guide_unavailable", "The agent-building guide cannot be read on this worker; try again later.")


TOOL = Tool(
    GUIDE_TOOL,
    "Agent JSON building guide (nodes, links, AgentExecutorBlock, MCPToolBlock, iterative create->dry-run->fix "
    "flow). REQUIRED before create_agent / edit_agent / validate_agent_graph / fix_agent_graph — they refuse until "
    "called once per session.",
    NoInput, get_agent_building_guide,
)
