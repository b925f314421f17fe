"""One tool call per activity, so a tool that finished is never run again after a crash.

Every refusal and failure is a tool result the model reads (`{"error": "code: message"}`),
never a crashed turn. A paid tool's cost is reserved (debited only if the balance covers it) before it
runs, at most once per tool call (a database-unique key), and given back when it produced no output.
"""

import asyncio
import hashlib
import json
import logging
import re
import time
from datetime import datetime, timezone
from typing import Any, Optional

from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy import select
from temporalio import activity

from activities.heartbeat import heartbeating
from billing import credits
from models import keys
from models.db import ChatMessage
from models.turn import ToolRequest, ToolResult, timeout_message
from observability import metrics
from observability.tracing import Tracing
from stream_relay.publisher import StreamPublisher
from tools.base import Prerequisite, Tool, ToolContext, ToolError, ToolServices
from tools.registry import ToolCatalog
from workspace.files import file_uri, save_file

log = logging.getLogger(__name__)
# Time kept back from the cap (at most this, a tenth of the cap for small caps) to publish and
# return the result before the workflow's own cap on the call ends the wait.
RESULT_RESERVE_SECONDS = 2.0


def _error(request: ToolRequest, code: str, message: str) -> ToolResult:
    return ToolResult(tool_call_id=request.call.id, name=request.call.name, error=f"{code}: {message}")


class _CapReached(Exception):
    """The tool ran into the wait cap."""


def _abandon(task: asyncio.Future) -> None:
    """Cancels a tool we stop waiting for (past the cap, or Stop); it ends in its own time."""
    def ended(done: asyncio.Future) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.warning("an abandoned tool call ended with %r", done.exception())

    task.cancel()
    task.add_done_callback(ended)


def _is_error_result(content: str) -> bool:
    """A stored tool result that is an error (`{"error": ...}`, what `ToolResult` writes)."""
    try:
        value = json.loads(content)
    except ValueError:
        return False
    return isinstance(value, dict) and set(value) == {"error"}


def _calls(stored: Any) -> list[dict]:
    """A row's tool calls: a message without any stores JSON null (not SQL NULL) there."""
    return [c for c in stored if isinstance(c, dict)] if isinstance(stored, list) else []


def _call_name(call: dict) -> Optional[str]:
    """A stored tool call's name, in the flat shape we store (`{"name": ...}`) or the OpenAI /
    Anthropic one (`{"function": {"name": ...}}`)."""
    function = call.get("function")
    return (function.get("name") if isinstance(function, dict) else None) or call.get("name")


def _produced_output(task: asyncio.Future) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


def _error_code(result: ToolResult) -> Optional[str]:
    """The code of an error result (`{"error": "<code>: <message>"}`), None for an output."""
    if result.error is None:
        return None
    return result.error.split(":", 1)[0].strip() or "error"


class ToolActivities:
    def __init__(self, redis: Redis, services: ToolServices, tools: ToolCatalog, tracing: Optional[Tracing] = None):
        self.tracing = tracing or Tracing.off()
        self.redis = redis
        self.services = services
        self.tools = tools
        self.settings = services.settings

    async def _completed_before(self, request: ToolRequest, tool_name: str) -> bool:
        """Whether an earlier call of this tool in the session completed successfully (the
        prerequisite gate). A call of the same round, which has no result yet, does not count;
        nor does one whose result is an error (refused, failed, timed out, stopped)."""
        async with self.services.sessions() as db:
            calls = (await db.execute(select(ChatMessage.turn_id, ChatMessage.tool_calls).where(
                ChatMessage.session_id == request.session_id, ChatMessage.role == "assistant",
                ChatMessage.tool_calls.is_not(None)))).all()
            wanted = {(turn_id, c.get("id")) for turn_id, tool_calls in calls for c in _calls(tool_calls)
                      if _call_name(c) == tool_name} - {(request.turn_id, request.call.id)}
            if not wanted:
                return False
            results = (await db.execute(select(ChatMessage.turn_id, ChatMessage.tool_call_id, ChatMessage.content).where(
                ChatMessage.session_id == request.session_id, ChatMessage.role == "tool",
                ChatMessage.tool_call_id.in_({call_id for _, call_id in wanted})))).all()
        return any((turn_id, call_id) in wanted and not _is_error_result(content)
                   for turn_id, call_id, content in results)

    async def _called_in_an_earlier_message(self, request: ToolRequest, tool_name: str) -> bool:
        """Whether an assistant message before the one that holds this call called the tool, with
        whatever result (or none yet)."""
        async with self.services.sessions() as db:
            rows = (await db.execute(select(ChatMessage.sequence, ChatMessage.turn_id, ChatMessage.tool_calls).where(
                ChatMessage.session_id == request.session_id, ChatMessage.role == "assistant",
                ChatMessage.tool_calls.is_not(None)).order_by(ChatMessage.sequence))).all()
        holding = next((sequence for sequence, turn_id, calls in rows if turn_id == request.turn_id
                        and any(c.get("id") == request.call.id for c in _calls(calls))), None)
        return any(_call_name(c) == tool_name for sequence, _, calls in rows
                   if holding is None or sequence < holding for c in _calls(calls))

    async def _prerequisite_met(self, request: ToolRequest, needs: Prerequisite) -> bool:
        if needs.waived_for_builder_sessions and request.builder_graph_id:
            return True
        if needs.must_succeed:
            return await self._completed_before(request, needs.tool)
        return await self._called_in_an_earlier_message(request, needs.tool)

    async def _write_reservation(self, request: ToolRequest, tool: Tool) -> bool:
        async with self.services.sessions.begin() as db:
            return await credits.debit_if_covered(db, request.user_id, tool.credit_cost,
                                                  keys.tool_charge(request.turn_id, request.call.id), f"tool {tool.name}")

    async def _reserve(self, request: ToolRequest, tool: Tool) -> bool:
        """Debits the cost before the tool runs, if the balance covers it (a retried call finds its own
        reservation). Stopped during the write, it waits for the write and gives it back: the tool never runs."""
        writing = asyncio.ensure_future(self._write_reservation(request, tool))
        try:
            return await asyncio.shield(writing)
        except asyncio.CancelledError:
            await asyncio.wait({writing})
            await self._refund(request, tool)
            raise

    async def _write_refund(self, request: ToolRequest, tool: Tool) -> None:
        async with self.services.sessions.begin() as db:
            await credits.refund(db, request.user_id, keys.tool_charge(request.turn_id, request.call.id),
                                 f"refund: tool {tool.name} gave no output")

    async def _refund(self, request: ToolRequest, tool: Tool) -> None:
        """Gives back the call's reservation, if there is one (shielded: a Stop must not leave it half done).
        A refund that cannot be written is logged, and the tool's own result still goes to the model."""
        if not tool.credit_cost:
            return
        try:
            await asyncio.shield(self._write_refund(request, tool))
        except Exception:
            log.exception("could not refund the reservation of tool call %s (turn %s)", request.call.id, request.turn_id)

    async def _execute(self, request: ToolRequest) -> ToolResult:
        tool = self.tools.get(request.call.name)
        if tool is None:
            return _error(request, "unknown_tool", f"There is no tool named '{request.call.name}'.")
        # Before anything else about the tool: a forbidden call is refused as such, whatever
        # kind of tool it is (a sub-session tool runs in the workflow only when allowed).
        if tool.name not in request.allowed_tools:
            return _error(request, "permission_denied", f"This session may not use '{tool.name}'.")
        if tool.run is None:
            return _error(request, "unknown_tool", f"'{tool.name}' cannot be called this way.")
        # Before the arguments: what the prerequisite gives (the building guide, say) is what the
        # model needs to write them right.
        needs = tool.requirement
        if needs is not None and not await self._prerequisite_met(request, needs):
            return _error(request, "prerequisite_missing", needs.refusal_for(tool.name))
        try:
            arguments = tool.input_model.model_validate(json.loads(request.call.arguments or "{}"))
        except (json.JSONDecodeError, ValidationError) as problem:
            return _error(request, "invalid_arguments", str(problem)[:2000])
        if request.dry_run and tool.effects_outside_workspace:
            return ToolResult(tool_call_id=request.call.id, name=tool.name, output={
                "dry_run": True, "ran": False, "input": arguments.model_dump(mode="json"),
                "message": f"'{tool.name}' was not run: this session is a dry run and the call would change "
                           "something outside its workspace. Describe what it would have done."})
        cap = request.timeout_seconds or self.settings.tool_timeout_seconds
        budget = self._budget(request, cap)
        if budget <= 0:  # a retry that starts after the call's deadline; an earlier attempt may have reserved
            await self._refund(request, tool)
            return _error(request, "tool_timeout", timeout_message(tool.name, cap))
        if tool.credit_cost and not await self._reserve(request, tool):
            return _error(request, "insufficient_credits",
                          f"'{tool.name}' costs {tool.credit_cost} credits; the balance is too low.")
        context = ToolContext(request.session_id, request.user_id, request.turn_id, request.call.id,
                              self.services, budget, request.dry_run, request.builder_graph_id)
        try:
            async with heartbeating():
                output = await self._run_within(tool, arguments, context, request, budget)
        except ToolError as refusal:
            await self._refund(request, tool)
            return _error(request, refusal.code, refusal.message)
        except _CapReached:
            await self._refund(request, tool)
            return _error(request, "tool_timeout", timeout_message(tool.name, cap))
        except Exception:  # run_tool makes it a tool_failed result
            await self._refund(request, tool)
            raise
        # Output exists: the reservation stands, so the call is paid for whatever happens next.
        return await self._fit_for_model(request, ToolResult(tool_call_id=request.call.id, name=tool.name,
                                                             output=output))

    @staticmethod
    def _budget(request: ToolRequest, cap: float) -> float:
        """Seconds the tool may run: the cap, less what earlier attempts of this call used
        (the workflow's deadline), less a reserve to hand the result back in time."""
        budget = cap
        if request.deadline is not None:
            budget = min(cap, (request.deadline - datetime.now(timezone.utc)).total_seconds())
        return budget - min(RESULT_RESERVE_SECONDS, cap / 10)

    async def _run_within(self, tool: Tool, arguments: Any, context: ToolContext, request: ToolRequest,
                          budget: float) -> Any:
        """Runs the tool for at most `budget` seconds. Past it, or when the activity is cancelled
        (Stop), the tool is cancelled and not waited for: `asyncio.wait_for` would wait for a tool
        that ignores cancellation, for as long as it likes."""
        task = asyncio.ensure_future(tool.run(arguments, context))
        try:
            done, _ = await asyncio.wait({task}, timeout=budget)
        except asyncio.CancelledError:
            if not _produced_output(task):  # with output, the call stays paid for though cancelled
                await self._refund(request, tool)
            _abandon(task)
            raise
        if not done:
            _abandon(task)
            raise _CapReached()
        return task.result()

    async def _fit_for_model(self, request: ToolRequest, result: ToolResult) -> ToolResult:
        """Stores an output too large for the model and hands it a truncated copy and a reference."""
        text = result.model_content()
        limit = self.settings.tool_output_max_chars
        if len(text) <= limit:
            return result
        # Named and identified from the call, never from raw provider text: the name is always a safe
        # one, and a retried activity finds the file it stored before instead of adding another.
        digest = hashlib.sha256(f"{request.user_id}/{request.turn_id}/{request.call.id}".encode()).hexdigest()
        tool_name = re.sub(r"[^A-Za-z0-9_-]", "_", request.call.name)[:64] or "tool"
        async with self.services.sessions() as db:
            record = await save_file(db, self.services.storage, request.user_id, request.session_id,
                                     f"{tool_name}-output-{digest[:12]}.json", text.encode(),
                                     max(self.settings.workspace_max_file_bytes, len(text.encode())),
                                     content_type="application/json", file_id=digest[:32])
        return result.model_copy(update={"output": {
            "truncated": True, "full_output": file_uri(record.id), "total_chars": len(text),
            "head": text[:limit - 500],
        }})

    @activity.defn
    async def run_tool(self, request: ToolRequest) -> ToolResult:
        attempt = activity.info().attempt
        if attempt > 1:  # the only retries are of attempts lost with their worker
            log.warning("tool call %s (%s) of session %s, turn %s: attempt %d, after an attempt lost with its worker",
                        request.call.id, request.call.name, request.session_id, request.turn_id, attempt)
        # The catalogue's names are the label's values: a name the model made up is `unknown`.
        tool = request.call.name if request.call.name in self.tools else "unknown"
        started = time.monotonic()
        with self.tracing.span(f"tool {tool}", {"copilot.tool": tool, "copilot.tool_call_id": request.call.id}) as span:
            try:
                result = await self._execute(request)
            except asyncio.CancelledError:
                metrics.TOOL_CALLS.labels(tool, "cancelled").inc()
                span.set_attribute("copilot.outcome", "cancelled")
                raise
            except Exception as failure:  # a tool bug is a tool result, never a crashed turn
                log.exception("tool %s failed", request.call.name)
                result = _error(request, "tool_failed", f"{type(failure).__name__}: the tool failed unexpectedly.")
            outcome = metrics.outcome_label(_error_code(result))
            span.set_attribute("copilot.outcome", outcome)
        metrics.TOOL_CALLS.labels(tool, outcome).inc()
        metrics.TOOL_CALL_DURATION.labels(tool).observe(time.monotonic() - started)
        publisher = StreamPublisher(self.redis, request.stream_key, self.settings.stream_retention_seconds)
        try:
            await publisher.publish_once(keys.tool_output_part(request.call.id), [result.stream_part()])
        except Exception:  # never fail (and so re-run) a tool that finished: the workflow publishes it
            log.exception("could not publish the result of tool call %s", request.call.id)
            result = result.model_copy(update={"published": False})
        return result
