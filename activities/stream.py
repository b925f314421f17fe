"""Stream parts the workflow itself decides on (step and turn boundaries, errors, the end)."""

from redis.asyncio import Redis
from temporalio import activity

from models.turn import OpenStreamRequest, PublishRequest
from stream_relay.publisher import StreamPublisher, open_turn_stream


class StreamActivities:
    def __init__(self, redis: Redis, retention_seconds: int):
        self.redis = redis
        self.retention_seconds = retention_seconds

    @activity.defn
    async def publish_parts(self, request: PublishRequest) -> None:
        publisher = StreamPublisher(self.redis, request.stream_key, self.retention_seconds)
        if request.end_stream:
            # Whatever a crashed attempt left open is closed before the stream ends.
            await publisher.close_to_model_parts()
            await publisher.close_open_parts()
        await publisher.publish_once(request.dedup_key, request.parts, end_stream=request.end_stream,
                                     continues=request.continues)

    @activity.defn
    async def open_stream(self, request: OpenStreamRequest) -> None:
        await open_turn_stream(self.redis, self.retention_seconds, request.session_id, request.turn_id,
                               request.stream_key)
