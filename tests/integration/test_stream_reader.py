"""The Redis stream reader and writers on a real Redis: keep-alives while quiet, an idle cut-off, resume,
no late parts after Stop."""

import json
import uuid

import pytest

from stream_relay.connection import redis_client
from stream_relay.publisher import RoundParts, StreamClosed, StreamFull, StreamPublisher, StreamWriter
from stream_relay.reader import read_stream_batches, valid_entry_id


async def read_all(redis, key: str, **options) -> list:
    return [event async for batch in read_stream_batches(redis, key, **options) for event in batch]


async def test_quiet_stream_sends_keepalives_then_ends_with_idle_timeout(stack):
    redis = redis_client(stack.redis_url)
    events = [e.kind for e in await read_all(redis, f"test:{uuid.uuid4()}", keepalive_seconds=0.1,
                                             idle_timeout_seconds=0.5)]
    assert events[-1] == "idle_timeout" and events.count("keepalive") >= 1
    await redis.aclose()


async def test_reader_resumes_after_an_entry_and_stops_at_the_end_marker(stack):
    redis = redis_client(stack.redis_url)
    key = f"test:{uuid.uuid4()}"
    publisher = StreamPublisher(redis, key, 60)
    await publisher.publish({"type": "start"}, {"type": "start-step"})
    assert await publisher.publish_once("end", [{"type": "finish"}], end_stream=True)
    assert not await publisher.publish_once("end", [{"type": "finish"}], end_stream=True)  # a retry writes nothing

    everything = await read_all(redis, key)
    assert [e.kind for e in everything] == ["part", "part", "part", "end"]
    resumed = await read_all(redis, key, after=everything[0].entry_id)
    assert resumed == everything[1:]
    assert valid_entry_id(everything[0].entry_id) and not valid_entry_id("0-x") and not valid_entry_id("abc")
    await redis.aclose()


async def test_a_stream_closed_to_model_parts_takes_no_late_delta(stack):
    """Stop closes a turn's stream while its cancelled round may still be streaming: whatever the
    round writes after that is refused, so no delta follows the end of its part."""
    redis = redis_client(stack.redis_url)
    key = f"test:{uuid.uuid4()}"
    writer, publisher = StreamWriter(redis, 60), StreamPublisher(redis, key, 60)
    round_parts = RoundParts(writer, key)
    round_parts.add([{"type": "text-start", "id": "t"}, {"type": "text-delta", "id": "t", "delta": "a"}])
    await round_parts.flush()

    await publisher.close_to_model_parts()
    assert await publisher.close_open_parts() == 1
    round_parts.add([{"type": "text-delta", "id": "t", "delta": "late"}])
    with pytest.raises(StreamClosed):
        await round_parts.flush()
    with pytest.raises(StreamClosed):  # the round fails at its next write, it does not stream on
        round_parts.add([{"type": "text-delta", "id": "t", "delta": "later"}])

    other = RoundParts(writer, f"test:{uuid.uuid4()}")  # another turn sharing the writer is unaffected
    other.add([{"type": "text-start", "id": "u"}])
    await other.flush()
    stored = [json.loads(fields["part"])["type"] for _id, fields in await redis.xrange(key)]
    assert stored == ["text-start", "text-delta", "text-end"]
    await redis.aclose()


async def test_a_round_that_would_overfill_its_stream_is_refused_whole(stack):
    redis = redis_client(stack.redis_url)
    key = f"test:{uuid.uuid4()}"
    round_parts = RoundParts(StreamWriter(redis, 60, max_parts=3), key)
    round_parts.add([{"type": "text-start", "id": "t"}, {"type": "text-delta", "id": "t", "delta": "a"}])
    await round_parts.flush()
    round_parts.add([{"type": "text-delta", "id": "t", "delta": "b"}, {"type": "text-delta", "id": "t", "delta": "c"}])
    with pytest.raises(StreamFull):
        await round_parts.flush()
    assert await redis.xlen(key) == 2  # nothing of the refused write, and never trimmed
    await redis.aclose()
