"""The tools the assistant may call. Adding a tool: write its module with a `Tool`, list it here.

The mapping is read-only: a worker, the API or a test that needs other tools builds its own
catalogue (`with_tools`) and hands it to `worker.build_worker` and `api.main.create_app`.
"""

from types import MappingProxyType
from typing import Iterable, Mapping, Optional

from tools import agent_graphs, agent_guide, bash_exec, current_time, sub_sessions, workspace_files
from tools.base import Tool

ToolCatalog = Mapping[str, Tool]

DEFAULT_TOOLS: ToolCatalog = MappingProxyType({tool.name: tool for tool in (
    current_time.TOOL,
    bash_exec.TOOL,
    workspace_files.WRITE,
    workspace_files.READ,
    workspace_files.LIST,
    sub_sessions.RUN,
    sub_sessions.GET_RESULT,
    agent_guide.TOOL,
    *agent_graphs.TOOLS,
)})


def with_tools(*extra: Tool, base: ToolCatalog = DEFAULT_TOOLS) -> ToolCatalog:
    """A catalogue of `base` plus `extra` (which replace tools of the same name)."""
    return MappingProxyType({**base, **{tool.name: tool for tool in extra}})


def tool_schemas(tools: ToolCatalog, allowed: Optional[Iterable[str]] = None) -> list[dict]:
    names = set(tools) if allowed is None else set(allowed)
    return [tool.openai_schema for tool in tools.values() if tool.name in names]
