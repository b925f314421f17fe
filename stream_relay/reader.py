"""Reads a turn's Redis stream from any point: the start (late subscriber) or after an event id
(reconnect with Last-Event-ID)."""

import re
import time
from dataclasses import dataclass
from typing import AsyncIterator, Literal, Optional

from redis.asyncio import Redis

from stream_relay.publisher import CONTINUES_FIELD, END_FIELD, PART_FIELD

STREAM_START = "0-0"
MAX_BLOCK_SECONDS = 20.0  # below the Redis client's socket timeout
READ_COUNT = 500  # entries per read at most: a fast stream's backlog goes out in few large writes


@dataclass(frozen=True)
class StreamEvent:
    kind: Literal["part", "end", "keepalive", "idle_timeout"]
    entry_id: Optional[str] = None
    raw: Optional[str] = None  # the part's JSON exactly as stored: relayed to clients without re-encoding
    continues: bool = False  # on "end": the session's next turn follows at once


# A Redis stream entry id, `<ms>-<seq>`: ASCII digits only (`str.isdigit` takes any script's), and
# at most 19 of each, so both stay below 2**64, past which Redis refuses the id.
ENTRY_ID_PATTERN = r"^[0-9]{1,19}-[0-9]{1,19}$"


def valid_entry_id(value: str) -> bool:
    return re.fullmatch(ENTRY_ID_PATTERN, value) is not None


async def read_stream_batches(
    redis: Redis,
    stream_key: str,
    after: str = STREAM_START,
    keepalive_seconds: float = 15.0,
    idle_timeout_seconds: float = 600.0,
) -> AsyncIterator[list[StreamEvent]]:
    """Yields the entries after `after`, as many as one read returns at a time, until the end
    marker; keep-alives while quiet.

    One batch is everything Redis had when asked, so a relay can send it in one write: a fast
    stream costs one read and one write per batch rather than per part, and a slow one still
    sends each part as soon as it is written. A stream that stays silent for
    `idle_timeout_seconds` ends with an `idle_timeout` event, so a client never hangs on a turn
    that will not produce anything more.
    """
    last_activity = time.monotonic()
    while True:
        quiet_for = time.monotonic() - last_activity
        if quiet_for >= idle_timeout_seconds:
            yield [StreamEvent(kind="idle_timeout")]
            return
        block_seconds = min(keepalive_seconds, idle_timeout_seconds - quiet_for, MAX_BLOCK_SECONDS)
        response = await redis.xread({stream_key: after}, count=READ_COUNT, block=max(1, int(block_seconds * 1000)))
        if not response:
            if time.monotonic() - last_activity < idle_timeout_seconds:
                yield [StreamEvent(kind="keepalive")]
            continue
        last_activity = time.monotonic()
        batch: list[StreamEvent] = []
        for _key, entries in response:
            for entry_id, fields in entries:
                after = entry_id
                if END_FIELD in fields:
                    batch.append(StreamEvent(kind="end", entry_id=entry_id, continues=CONTINUES_FIELD in fields))
                    yield batch
                    return
                batch.append(StreamEvent(kind="part", entry_id=entry_id, raw=fields[PART_FIELD]))
        yield batch
