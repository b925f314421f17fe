"""One tool call per activity, so a tool that finished is never run again after a crash."""

import asyncio
import json
import logging

from pydantic import ValidationError
from redis.asyncio import Redis
from temporalio import activity

from activities.heartbeat import heartbeating
from models import ui_stream
from models.turn import ToolRequest, ToolResult
from stream_relay.publisher import StreamPublisher
from tools.base import ToolContext, ToolError
from tools.registry import TOOLS

log = logging.getLogger(__name__)


def _error(request: ToolRequest, code: str, message: str) -> ToolResult:
    return ToolResult(tool_call_id=request.call.id, name=request.call.name, error=f"{code}: {message}")


class ToolActivities:
    def __init__(self, redis: Redis, retention_seconds: int, timeout_seconds: float):
        self.redis = redis
        self.retention_seconds = retention_seconds
        self.timeout_seconds = timeout_seconds

    async def _execute(self, request: ToolRequest) -> ToolResult:
        tool = TOOLS.get(request.call.name)
        if tool is None:
            return _error(request, "unknown_tool", f"There is no tool named '{request.call.name}'.")
        try:
            arguments = tool.input_model.model_validate(json.loads(request.call.arguments or "{}"))
        except (json.JSONDecodeError, ValidationError) as problem:
            return _error(request, "invalid_arguments", str(problem)[:2000])
        context = ToolContext(request.session_id, request.user_id, request.turn_id, request.call.id)
        try:
            async with heartbeating():
                output = await asyncio.wait_for(tool.run(arguments, context), self.timeout_seconds)
        except ToolError as refusal:
            return _error(request, refusal.code, refusal.message)
        except asyncio.TimeoutError:
            return _error(request, "tool_timeout", f"The tool did not finish within {self.timeout_seconds:.0f}s.")
        return ToolResult(tool_call_id=request.call.id, name=request.call.name, output=output)

    @activity.defn
    async def run_tool(self, request: ToolRequest) -> ToolResult:
        try:
            result = await self._execute(request)
        except Exception as failure:  # a tool bug is a tool result, never a crashed turn
            log.exception("tool %s failed", request.call.name)
            result = _error(request, "tool_failed", f"{type(failure).__name__}: the tool failed unexpectedly.")
        part = (ui_stream.tool_output_error(request.call.id, result.error) if result.error is not None
                else ui_stream.tool_output_available(request.call.id, result.output))
        publisher = StreamPublisher(self.redis, request.stream_key, self.retention_seconds)
        await publisher.publish_once(f"tool-output-{request.call.id}", [part])
        return result
