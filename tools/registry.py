"""Every tool the assistant may call. Adding a tool: write its module with a `TOOL`, list it here."""

from tools import current_time
from tools.base import Tool

TOOLS: dict[str, Tool] = {tool.name: tool for tool in (current_time.TOOL,)}


def tool_schemas() -> list[dict]:
    return [tool.openai_schema() for tool in TOOLS.values()]
