"""One tool call per activity, so a tool that finished is never run again after a crash.

Every refusal and failure is a tool result the model reads (`{"error": "code: message"}`),
never a crashed turn. Credits are charged at most once per tool call (a database-unique key).
"""

import asyncio
import json
import logging

from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy import select
from temporalio import activity

from activities.heartbeat import heartbeating
from billing import credits
from models import ui_stream
from models.db import ChatMessage
from models.turn import ToolRequest, ToolResult
from stream_relay.publisher import StreamPublisher
from tools.base import Tool, ToolContext, ToolError, ToolServices
from tools.registry import TOOLS
from workspace.files import file_uri, save_file

log = logging.getLogger(__name__)


def _error(request: ToolRequest, code: str, message: str) -> ToolResult:
    return ToolResult(tool_call_id=request.call.id, name=request.call.name, error=f"{code}: {message}")


class ToolActivities:
    def __init__(self, redis: Redis, services: ToolServices):
        self.redis = redis
        self.services = services
        self.settings = services.settings

    async def _called_before(self, request: ToolRequest, tool_name: str) -> bool:
        """Whether the session has an earlier call of this tool (the prerequisite gate)."""
        async with self.services.sessions() as db:
            rows = (await db.execute(select(ChatMessage.tool_calls).where(
                ChatMessage.session_id == request.session_id, ChatMessage.role == "assistant",
                ChatMessage.tool_calls.is_not(None)))).scalars().all()
        return any(c.get("name") == tool_name and c.get("id") != request.call.id for calls in rows for c in calls)

    async def _charge(self, request: ToolRequest, tool: Tool) -> None:
        async with self.services.sessions.begin() as db:
            await credits.add_entry(db, request.user_id, -tool.credit_cost,
                                    credits.tool_charge_key(request.turn_id, request.call.id), f"tool {tool.name}")

    async def _execute(self, request: ToolRequest) -> ToolResult:
        tool = TOOLS.get(request.call.name)
        if tool is None or tool.run is None:
            return _error(request, "unknown_tool", f"There is no tool named '{request.call.name}'.")
        if tool.name not in request.allowed_tools:
            return _error(request, "permission_denied", f"This session may not use '{tool.name}'.")
        try:
            arguments = tool.input_model.model_validate(json.loads(request.call.arguments or "{}"))
        except (json.JSONDecodeError, ValidationError) as problem:
            return _error(request, "invalid_arguments", str(problem)[:2000])
        if tool.prerequisite and not await self._called_before(request, tool.prerequisite):
            return _error(request, "prerequisite_missing", f"Call '{tool.prerequisite}' before '{tool.name}'.")
        if tool.credit_cost:
            async with self.services.sessions() as db:
                charge_key = credits.tool_charge_key(request.turn_id, request.call.id)
                if not await credits.already_charged(db, charge_key) and \
                        await credits.balance(db, request.user_id) < tool.credit_cost:
                    return _error(request, "insufficient_credits",
                                  f"'{tool.name}' costs {tool.credit_cost} credits; the balance is too low.")
        context = ToolContext(request.session_id, request.user_id, request.turn_id, request.call.id,
                              self.services, tuple(request.allowed_tools))
        cap = self.settings.tool_timeout_seconds
        try:
            async with heartbeating():
                output = await asyncio.wait_for(tool.run(arguments, context), cap)
        except ToolError as refusal:
            return _error(request, refusal.code, refusal.message)
        except asyncio.TimeoutError:
            return _error(request, "tool_timeout", f"'{tool.name}' did not finish within {cap:.0f}s. For long "
                          "work, delegate it with run_sub_session and poll get_sub_session_result.")
        if tool.credit_cost:
            # Output exists, so the call is paid for, even if Stop cancels us right now.
            await asyncio.shield(self._charge(request, tool))
        return await self._fit_for_model(request, ToolResult(tool_call_id=request.call.id, name=tool.name,
                                                             output=output))

    async def _fit_for_model(self, request: ToolRequest, result: ToolResult) -> ToolResult:
        """Stores an output too large for the model and hands it a truncated copy and a reference."""
        text = result.model_content()
        limit = self.settings.tool_output_max_chars
        if len(text) <= limit:
            return result
        async with self.services.sessions() as db:
            record = await save_file(db, self.services.storage, request.user_id, request.session_id,
                                     f"{request.call.name}-{request.call.id[-12:]}.json", text.encode(),
                                     max(self.settings.workspace_max_file_bytes, len(text.encode())),
                                     content_type="application/json")
        return result.model_copy(update={"output": {
            "truncated": True, "full_output": file_uri(record.id), "total_chars": len(text),
            "head": text[:limit - 500],
        }})

    @activity.defn
    async def run_tool(self, request: ToolRequest) -> ToolResult:
        try:
            result = await self._execute(request)
        except Exception as failure:  # a tool bug is a tool result, never a crashed turn
            log.exception("tool %s failed", request.call.name)
            result = _error(request, "tool_failed", f"{type(failure).__name__}: the tool failed unexpectedly.")
        part = (ui_stream.tool_output_error(request.call.id, result.error) if result.error is not None
                else ui_stream.tool_output_available(request.call.id, result.output))
        publisher = StreamPublisher(self.redis, request.stream_key, self.settings.stream_retention_seconds)
        await publisher.publish_once(f"tool-output-{request.call.id}", [part])
        return result
