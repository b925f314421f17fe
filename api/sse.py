"""The turn's Redis stream as Server-Sent Events in the Vercel AI SDK UI message stream format."""

import json
from typing import AsyncIterator

from fastapi.responses import StreamingResponse
from redis.asyncio import Redis

from models import ui_stream
from settings import Settings
from stream_relay.reader import STREAM_START, read_stream

IDLE_TIMEOUT_TEXT = "The answer stopped arriving. Reload the session to see what was saved, then try again."


def _event(entry_id: str | None, payload: str) -> str:
    prefix = f"id: {entry_id}\n" if entry_id else ""
    return f"{prefix}data: {payload}\n\n"


async def sse_events(redis: Redis, stream_key: str, after: str, settings: Settings) -> AsyncIterator[str]:
    async for event in read_stream(redis, stream_key, after, settings.stream_keepalive_seconds,
                                   settings.stream_idle_timeout_seconds):
        if event.kind == "part":
            yield _event(event.entry_id, json.dumps(event.part, separators=(",", ":")))
        elif event.kind == "keepalive":
            yield ": keep-alive\n\n"
        elif event.kind == "idle_timeout":
            # The protocol's chunks are strict objects, so the code travels in a data part.
            yield _event(None, json.dumps(ui_stream.data("stream-error", {"code": "idle_timeout", "retryable": True})))
            yield _event(None, json.dumps(ui_stream.error(IDLE_TIMEOUT_TEXT)))
            yield _event(None, "[DONE]")
        else:
            yield _event(event.entry_id, "[DONE]")


def sse_response(redis: Redis, stream_key: str, settings: Settings, after: str = STREAM_START) -> StreamingResponse:
    header, version = ui_stream.STREAM_HEADER
    return StreamingResponse(
        sse_events(redis, stream_key, after, settings),
        media_type="text/event-stream",
        headers={header: version, "Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"},
    )
