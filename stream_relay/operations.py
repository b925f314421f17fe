"""What operators need of turn streams: when each last moved, and closing one whose turn was ended
from outside (terminated), so that a reader gets an ending instead of waiting for its idle timeout."""

from datetime import datetime, timezone
from typing import Optional, Sequence

from redis.asyncio import Redis

from models import ui_stream
from models.keys import FINISH_PART
from stream_relay.publisher import StreamPublisher


def entry_time(entry_id: str) -> datetime:
    """A stream entry id is `<milliseconds since the epoch>-<sequence>`: when Redis wrote it."""
    return datetime.fromtimestamp(int(entry_id.split("-", 1)[0]) / 1000, tz=timezone.utc)


async def last_event_times(redis: Redis, stream_keys: Sequence[str]) -> list[Optional[datetime]]:
    """When each stream last got an entry (None: no stream, or expired), in one round trip."""
    if not stream_keys:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for key in stream_keys:
            pipe.xrevrange(key, count=1)
        answers = await pipe.execute()
    return [entry_time(entries[0][0]) if entries else None for entries in answers]


async def end_abandoned_stream(redis: Redis, stream_key: str, retention_seconds: int, message: str) -> bool:
    """Closes what the turn left open and ends its stream with an error part, unless the turn had
    ended it itself (the same once-only key as its own finish). True when this call ended it."""
    publisher = StreamPublisher(redis, stream_key, retention_seconds)
    await publisher.close_to_model_parts()
    await publisher.close_open_parts()
    parts = [ui_stream.finish_step(), ui_stream.error(message), ui_stream.finish()]
    return await publisher.publish_once(FINISH_PART, parts, end_stream=True)
