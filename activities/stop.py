"""What Stop leaves behind: the partial answer, a result for every tool call (its real one when it
had finished, "stopped by user" when not), a marker."""

import json

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.store import insert_rows
from models import keys, ui_stream
from models.turn import STOP_MARKER, NewMessageRow, StopRequest
from stream_relay.publisher import PART_FIELD, StreamPublisher, open_turn_stream

STOPPED_RESULT = json.dumps({"error": STOP_MARKER})


async def partial_round(redis: Redis, stream_key: str, round_index: int) -> tuple[str, str]:
    """The text and reasoning a stopped round had streamed (from its latest attempt)."""
    prefix = f"r{round_index}a"
    by_attempt: dict[int, dict[str, list[str]]] = {}
    for _entry_id, fields in await redis.xrange(stream_key):
        part = json.loads(fields.get(PART_FIELD, "{}"))
        part_id = str(part.get("id", ""))
        if part.get("type") not in ("text-delta", "reasoning-delta") or not part_id.startswith(prefix):
            continue
        attempt = int(part_id[len(prefix):].split("-", 1)[0])
        kind = "text" if part["type"] == "text-delta" else "reasoning"
        by_attempt.setdefault(attempt, {"text": [], "reasoning": []})[kind].append(part["delta"])
    if not by_attempt:
        return "", ""
    latest = by_attempt[max(by_attempt)]
    return "".join(latest["text"]), "".join(latest["reasoning"])


class StopActivities:
    def __init__(self, redis: Redis, sessions: async_sessionmaker[AsyncSession], retention_seconds: int):
        self.redis = redis
        self.sessions = sessions
        self.retention_seconds = retention_seconds

    @activity.defn
    async def record_stop(self, request: StopRequest) -> None:
        # Stopped during the first writes: the opening messages are kept and the stream opened.
        rows = [m.row() for m in request.unrecorded_messages]
        if request.unrecorded_messages:
            await open_turn_stream(self.redis, self.retention_seconds, request.session_id, request.turn_id,
                                   request.stream_key)
        finished = request.finished_tool_results
        if not request.open_tool_calls and not finished:
            # Stopped while the model was answering: keep what it had said. (If the round had
            # finished, its rows exist under the same keys and these are skipped.)
            text, reasoning = await partial_round(self.redis, request.stream_key, request.round_index)
            if reasoning:
                rows.append(NewMessageRow(key=keys.reasoning_row(request.round_index), role="reasoning", content=reasoning))
            if text:
                rows.append(NewMessageRow(key=keys.assistant_row(request.round_index), role="assistant", content=text))
        rows += [NewMessageRow(key=keys.tool_row(r.tool_call_id), role="tool", content=r.model_content(),
                               tool_call_id=r.tool_call_id) for r in finished]
        rows += [NewMessageRow(key=keys.tool_row(call.id), role="tool", content=STOPPED_RESULT, tool_call_id=call.id)
                 for call in request.open_tool_calls]
        rows.append(NewMessageRow(key=keys.STOP_ROW, role="system", content=STOP_MARKER))
        async with self.sessions.begin() as db:
            await insert_rows(db, request.session_id, request.turn_id, rows)

        publisher = StreamPublisher(self.redis, request.stream_key, self.retention_seconds)
        for result in finished:  # already on the stream, unless Stop came first (written once)
            await publisher.publish_once(keys.tool_output_part(result.tool_call_id), [result.stream_part()])
        for call in request.open_tool_calls:
            await publisher.publish_once(keys.tool_output_part(call.id), [ui_stream.tool_output_error(call.id, STOP_MARKER)])
        await publisher.close_to_model_parts()
        await publisher.close_open_parts()
        await publisher.publish_once(keys.FINISH_PART, [ui_stream.finish_step(), ui_stream.abort(), ui_stream.finish()],
                                     end_stream=True, continues=request.continues)
