"""Removing a deleted session's stream keys: every turn's stream, its dedup and fence keys, and
the pointer to its latest turn."""

import logging
import re

from redis.asyncio import Redis
from redis.exceptions import RedisError

from models.keys import turn_stream_key
from stream_relay.keys import latest_turn_key

SCAN_COUNT = 1000
log = logging.getLogger(__name__)


def _glob_escaped(text: str) -> str:
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


async def delete_session_streams(redis: Redis, session_id: str) -> int:
    """Deletes them all; returns how many keys went. Without Redis nothing is deleted (logged):
    the keys expire on their own within the stream retention."""
    try:
        return await _delete_session_streams(redis, session_id)
    except RedisError as failure:
        log.warning("stream keys of deleted session %s left to expire, Redis unavailable: %s", session_id,
                    type(failure).__name__)
        return 0


async def _delete_session_streams(redis: Redis, session_id: str) -> int:
    pattern = _glob_escaped(turn_stream_key(session_id, "")) + "*"
    deleted = await redis.delete(latest_turn_key(session_id))
    batch: list[str] = []
    async for key in redis.scan_iter(match=pattern, count=SCAN_COUNT):
        batch.append(key)
        if len(batch) >= SCAN_COUNT:
            deleted += await redis.delete(*batch)
            batch = []
    if batch:
        deleted += await redis.delete(*batch)
    return deleted
