"""Appends parts to a turn's Redis stream."""

import asyncio
import json
from typing import Any, Iterable

from redis.asyncio import Redis

from models import ui_stream
from stream_relay.keys import publish_dedup_key

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


class PartBatcher:
    """Publishes a model round's parts without making the model stream wait on Redis.

    `add` returns at once; one background task writes what has accumulated, one pipelined
    round trip per batch. A part that arrives while nothing is being written goes out at once
    (no timer, no added latency); parts that arrive during a write go together in the next one.
    So at a human pace every part is its own batch, and a fast model's tokens are written in
    batches as large as one Redis round trip lets accumulate, instead of one round trip each.
    Every part is still its own stream entry, so event ids and resume are unchanged.
    """

    def __init__(self, publisher: StreamPublisher):
        self.publisher = publisher
        self._pending: list[dict[str, Any]] = []
        self._writer: asyncio.Task | None = None

    def add(self, parts: Iterable[dict[str, Any]]) -> None:
        if self._writer is not None and self._writer.done() and self._writer.exception() is not None:
            self._writer.result()  # a failed write fails the round now, not at the end
        self._pending.extend(parts)
        if self._pending and (self._writer is None or self._writer.done()):
            self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            await self.publisher.publish(*batch)

    async def flush(self) -> None:
        """Waits until every added part is in Redis; raises the error of a failed write."""
        if self._writer is not None:
            await asyncio.shield(self._writer)
