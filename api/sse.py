"""A turn's Redis stream as Server-Sent Events in the Vercel AI SDK UI message stream format."""

import asyncio
import json
import logging
import time
from typing import AsyncIterator, Optional

from fastapi.responses import StreamingResponse
from redis.asyncio import Redis
from redis.exceptions import RedisError

from models import ui_stream
from models.keys import turn_stream_key
from observability import metrics
from settings import Settings
from stream_relay.keys import latest_turn_key
from stream_relay.reader import STREAM_START, read_stream_batches

STREAM_UNAVAILABLE_TEXT = ("The live answer cannot be shown right now; it is still being written and saved. "
                           "Reload the session in a moment to see it.")
IDLE_TIMEOUT_TEXT = "The answer stopped arriving. Reload the session to see what was saved, then try again."
NEXT_TURN_WAIT_SECONDS = 10.0
log = logging.getLogger(__name__)


# Stored, an approval request is a `data-` part and a declined call a `tool-output-error`: what
# every AI SDK client reads (version 5 refuses parts it does not know). A client that says it is
# version 6 or later (APPROVAL_PROTOCOL_HEADER) gets them as that protocol's own parts instead.
APPROVAL_PROTOCOL_HEADER = "x-ai-sdk-version"
NATIVE_APPROVALS_FROM_VERSION = 6
_APPROVAL_REQUEST = '{"type":"data-tool-approval-request"'
_TOOL_ERROR = '{"type":"tool-output-error"'
_DECLINED = ('"errorText":"approval_denied:', '"errorText":"approval_timed_out:')


def native_approval_part(raw: str) -> str:
    """An approval part as AI SDK 6 and later speak it; any other part as stored."""
    if raw.startswith(_APPROVAL_REQUEST):
        data = json.loads(raw)["data"]
        return json.dumps(ui_stream.tool_approval_request(data["approvalId"], data["toolCallId"]), separators=(",", ":"))
    if raw.startswith(_TOOL_ERROR) and any(marker in raw for marker in _DECLINED):
        return json.dumps(ui_stream.tool_output_denied(json.loads(raw)["toolCallId"]), separators=(",", ":"))
    return raw


def _event(entry_id: Optional[str], payload: str) -> str:
    prefix = f"id: {entry_id}\n" if entry_id else ""
    return f"{prefix}data: {payload}\n\n"


async def _next_turn(redis: Redis, session_id: str, previous_turn: str) -> Optional[str]:
    """The turn that auto-continued from `previous_turn`, once it has opened its stream."""
    deadline = time.monotonic() + NEXT_TURN_WAIT_SECONDS
    while time.monotonic() < deadline:
        latest = await redis.get(latest_turn_key(session_id))
        if latest and latest != previous_turn:
            return latest
        await asyncio.sleep(0.05)
    return None


# The first part that is a token, as the publisher stores parts (compact JSON, `type` first).
FIRST_TOKEN_MARKERS = ('{"type":"text-delta"', '{"type":"reasoning-delta"')


async def sse_events(redis: Redis, session_id: str, turn_id: str, after: str, settings: Settings,
                     follow_next_turns: bool, native_approvals: bool = False,
                     sent_at: Optional[float] = None) -> AsyncIterator[str]:
    """The turn's events, counted in `copilot_sse_streams_open` while served; if Redis stops
    answering, a well-formed end that says so (the turn itself goes on in its workflow, and what
    it says is saved: a reload shows it)."""
    metrics.SSE_STREAMS_OPEN.inc()
    try:
        async for chunk in _turn_events(redis, session_id, turn_id, after, settings, follow_next_turns,
                                        native_approvals, sent_at):
            yield chunk
    except RedisError as failure:
        log.warning("stream of session %s cut, Redis unavailable: %s", session_id, type(failure).__name__)
        yield "".join([
            _event(None, json.dumps(ui_stream.data("stream-error", {"code": "stream_unavailable", "retryable": True}))),
            _event(None, json.dumps(ui_stream.error(STREAM_UNAVAILABLE_TEXT))), _event(None, "[DONE]")])
    finally:
        metrics.SSE_STREAMS_OPEN.dec()


async def _turn_events(redis: Redis, session_id: str, turn_id: str, after: str, settings: Settings,
                       follow_next_turns: bool, native_approvals: bool,
                       sent_at: Optional[float]) -> AsyncIterator[str]:
    """The turn's events, each read's worth in one chunk: one socket write per Redis read, not
    per part, and the parts' JSON goes out as the publisher stored it (no decode, no re-encode).
    `sent_at` (the message's arrival, `time.monotonic()`): the time to its first token is measured."""
    while True:
        next_turn = None
        async for batch in read_stream_batches(redis, turn_stream_key(session_id, turn_id), after,
                                               settings.stream_keepalive_seconds,
                                               settings.stream_idle_timeout_seconds):
            out = []
            for event in batch:
                if event.kind == "part":
                    out.append(_event(event.entry_id, native_approval_part(event.raw) if native_approvals else event.raw))
                    if sent_at is not None and event.raw.startswith(FIRST_TOKEN_MARKERS):
                        metrics.TIME_TO_FIRST_TOKEN.observe(time.monotonic() - sent_at)
                        sent_at = None
                elif event.kind == "keepalive":
                    out.append(": keep-alive\n\n")
                elif event.kind == "idle_timeout":
                    # The protocol's chunks are strict objects, so the code travels in a data part.
                    out.append(_event(None, json.dumps(ui_stream.data("stream-error", {"code": "idle_timeout",
                                                                                        "retryable": True}))))
                    out.append(_event(None, json.dumps(ui_stream.error(IDLE_TIMEOUT_TEXT))))
                    out.append(_event(None, "[DONE]"))
                    yield "".join(out)
                    return
                elif follow_next_turns and event.continues:
                    if out:  # what this turn said goes out before the wait for the next one
                        yield "".join(out)
                        out = []
                    next_turn = await _next_turn(redis, session_id, turn_id)
                    if next_turn is None:
                        out.append(_event(event.entry_id, "[DONE]"))
                        yield "".join(out)
                        return
                else:
                    out.append(_event(event.entry_id, "[DONE]"))
                    yield "".join(out)
                    return
            if out:
                yield "".join(out)
        if next_turn is None:
            return
        turn_id, after = next_turn, STREAM_START


def sse_response(redis: Redis, session_id: str, turn_id: str, settings: Settings, after: str = STREAM_START,
                 follow_next_turns: bool = False, client_version: Optional[int] = None,
                 sent_at: Optional[float] = None) -> StreamingResponse:
    header, version = ui_stream.STREAM_HEADER
    native_approvals = client_version is not None and client_version >= NATIVE_APPROVALS_FROM_VERSION
    return StreamingResponse(
        sse_events(redis, session_id, turn_id, after, settings, follow_next_turns, native_approvals, sent_at),
        media_type="text/event-stream",
        headers={header: version, "Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"},
    )
