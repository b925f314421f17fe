"""Appends parts to a turn's Redis stream."""

import asyncio
import json
from typing import Any, Iterable

from redis.asyncio import Redis

from models import ui_stream
from stream_relay.keys import closed_key, latest_turn_key, publish_dedup_key

PART_FIELD = "part"
END_FIELD = "end"
CONTINUES_FIELD = "continues"  # on the end entry: a next turn follows (auto-continue)

# Write the parts only if this dedup key was never written: a retried activity publishes once.
_PUBLISH_ONCE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  for i = 2, #ARGV do
    if ARGV[i] == '' then
      redis.call('XADD', KEYS[1], '*', 'end', '1')
    elseif ARGV[i] == '+' then
      redis.call('XADD', KEYS[1], '*', 'end', '1', 'continues', '1')
    else
      redis.call('XADD', KEYS[1], '*', 'part', ARGV[i])
    end
  end
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  return 1
end
return 0
"""

# A model round's parts, unless the stream was closed to them (Stop ended the turn while the
# cancelled round had not noticed yet): late deltas must not follow the parts that closed it.
# Nor past the stream's maximum length: the round ends rather than the stream being trimmed.
_APPEND_UNLESS_CLOSED = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
if redis.call('XLEN', KEYS[1]) + #ARGV - 2 > tonumber(ARGV[2]) then
  return -1
end
for i = 3, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'part', ARGV[i])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


class StreamClosed(RuntimeError):
    """The turn's stream was closed to model-round parts."""


class StreamFull(RuntimeError):
    """The turn's stream holds as many parts as it may."""


class StreamPublisher:
    def __init__(self, redis: Redis, stream_key: str, retention_seconds: int):
        self.redis = redis
        self.stream_key = stream_key
        self.retention_seconds = retention_seconds

    async def publish(self, *parts: dict[str, Any]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for part in parts:
                pipe.xadd(self.stream_key, {PART_FIELD: json.dumps(part, separators=(",", ":"))})
            pipe.expire(self.stream_key, self.retention_seconds)
            await pipe.execute()

    async def publish_once(self, dedup_key: str, parts: Iterable[dict[str, Any]], end_stream: bool = False,
                           continues: bool = False) -> bool:
        encoded = [json.dumps(p, separators=(",", ":")) for p in parts]
        if end_stream:
            encoded.append("+" if continues else "")
        written = await self.redis.eval(
            _PUBLISH_ONCE, 2, self.stream_key, publish_dedup_key(self.stream_key, dedup_key),
            self.retention_seconds, *encoded,
        )
        return bool(written)

    async def close_to_model_parts(self) -> None:
        """From now on no model round writes to this stream; call before closing what is open,
        so a round still running cannot add to a part after its end."""
        await self.redis.set(closed_key(self.stream_key), "1", ex=self.retention_seconds)

    async def open_parts(self) -> list[dict[str, Any]]:
        """Parts started but never ended so far (an attempt that died mid-stream leaves these)."""
        open_by_id: dict[str, dict[str, Any]] = {}
        for _entry_id, fields in await self.redis.xrange(self.stream_key):
            raw = fields.get(PART_FIELD)
            if raw is None:
                continue
            part = json.loads(raw)
            kind = part.get("type", "")
            if kind in ui_stream.CLOSERS:
                open_by_id[part["id"]] = part
            elif kind in ("text-end", "reasoning-end"):
                open_by_id.pop(part.get("id"), None)
        return list(open_by_id.values())

    async def close_open_parts(self) -> int:
        closers = [ui_stream.CLOSERS[p["type"]](p["id"]) for p in await self.open_parts()]
        if closers:
            await self.publish(*closers)
        return len(closers)


async def open_turn_stream(redis: Redis, retention_seconds: int, session_id: str, turn_id: str, stream_key: str) -> None:
    """Points the session at this turn's stream (for re-attaching clients) and starts it (once)."""
    await redis.set(latest_turn_key(session_id), turn_id, ex=retention_seconds)
    await StreamPublisher(redis, stream_key, retention_seconds).publish_once("start", [ui_stream.start(turn_id)])


class StreamWriter:
    """Writes model-round parts for every turn one process streams, without making any model
    stream wait on Redis.

    `add` returns at once; one background task writes what has accumulated, from all turns, in
    one pipelined round trip. A part that arrives while nothing is being written goes out at once
    (no timer, no added latency); parts that arrive during a write go together in the next one.
    So a lone turn at a human pace sends each part on its own, a fast model's tokens go in
    batches as large as one round trip lets accumulate, and a hundred turns streaming at once
    share round trips instead of paying one each. Every part is still its own stream entry, so
    event ids and resume are unchanged; parts of one turn are written in the order added.
    """

    def __init__(self, redis: Redis, retention_seconds: int, max_parts: int = 100_000):
        self.redis = redis
        self.retention_seconds = retention_seconds
        self.max_parts = max_parts
        self._pending: list[tuple[str, list[str], asyncio.Future]] = []
        self._task: asyncio.Task | None = None

    def add(self, stream_key: str, parts: Iterable[dict[str, Any]]) -> asyncio.Future:
        """Queues the parts; the future is done once they are in Redis (or failed to be)."""
        done = asyncio.get_running_loop().create_future()
        encoded = [json.dumps(p, separators=(",", ":")) for p in parts]
        if not encoded:
            done.set_result(None)
            return done
        self._pending.append((stream_key, encoded, done))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._write())
        return done

    async def _write(self) -> None:
        batch: list[tuple[str, list[str], asyncio.Future]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._write_batch(batch)
        except BaseException as stopped:
            # Cancelled with the worker's shutdown: no round may wait for a write that never comes.
            for _key, _parts, done in batch + self._pending:
                if not done.done():
                    done.set_exception(RuntimeError("the stream writer stopped") if isinstance(
                        stopped, asyncio.CancelledError) else stopped)
            self._pending = []
            raise

    async def _write_batch(self, batch: list[tuple[str, list[str], asyncio.Future]]) -> None:
        error: BaseException | None = None
        async with self.redis.pipeline(transaction=False) as pipe:
            # One script per queued write, in order, so result i belongs to the i-th write.
            for stream_key, encoded, _ in batch:
                pipe.execute_command("EVAL", _APPEND_UNLESS_CLOSED, 2, stream_key, closed_key(stream_key),
                                     self.retention_seconds, self.max_parts, *encoded)
            try:
                # A failed command fails only the turn whose parts it carried.
                results = await pipe.execute(raise_on_error=False)
            except Exception as failure:  # the connection itself: every turn in the batch
                results, error = [], failure
        for index, (_stream_key, _encoded, done) in enumerate(batch):
            if done.done():
                continue
            result = error or results[index]
            if isinstance(result, BaseException):
                done.set_exception(result)
            elif result == 0:
                done.set_exception(StreamClosed("the turn's stream was closed to model parts"))
            elif result < 0:
                done.set_exception(StreamFull(f"the turn's stream reached {self.max_parts} parts"))
            else:
                done.set_result(None)


class RoundParts:
    """One model round's parts going through the process's StreamWriter."""

    def __init__(self, writer: StreamWriter, stream_key: str):
        self.writer = writer
        self.stream_key = stream_key
        self._last: asyncio.Future | None = None

    def add(self, parts: Iterable[dict[str, Any]]) -> None:
        if self._last is not None and self._last.done() and self._last.exception() is not None:
            self._last.result()  # a failed write fails the round now, not at the end
        self._last = self.writer.add(self.stream_key, parts)
        # Only the last write is awaited (flush); an earlier one's error is read here so asyncio
        # does not report it as never retrieved (a later write of the round fails with it too).
        self._last.add_done_callback(lambda done: done.cancelled() or done.exception())

    async def flush(self) -> None:
        """Waits until every added part is in Redis; raises the error of a failed write.
        Writes happen in order, so the last one done means all are."""
        if self._last is not None:
            await asyncio.shield(self._last)
