"""Every tool the assistant may call. Adding a tool: write its module with a `Tool`, list it here."""

from typing import Iterable, Optional

from tools import bash_exec, current_time, sub_sessions, workspace_files
from tools.base import Tool

TOOLS: dict[str, Tool] = {tool.name: tool for tool in (
    current_time.TOOL,
    bash_exec.TOOL,
    workspace_files.WRITE,
    workspace_files.READ,
    workspace_files.LIST,
    sub_sessions.RUN,
    sub_sessions.GET_RESULT,
)}


def tool_schemas(allowed: Optional[Iterable[str]] = None) -> list[dict]:
    names = set(TOOLS) if allowed is None else set(allowed)
    return [tool.openai_schema() for tool in TOOLS.values() if tool.name in names]
