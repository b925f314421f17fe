"""How many messages a user may send per window (fixed windows in Redis).

Counting fails open: if Redis is unavailable the message is accepted and the failure logged,
because refusing every user during a Redis blip is worse than a few extra messages.
"""

import logging
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_seconds: int


class MessageRateLimiter:
    """`scope` names what is counted (a user's messages; a client address's public reads), so
    two limits never share a counter."""

    def __init__(self, redis: Redis, limit: int, window_seconds: int, scope: str = "messages"):
        self.redis = redis
        self.limit = limit
        self.window_seconds = window_seconds
        self.scope = scope

    async def hit(self, subject: str) -> RateDecision:
        if self.limit <= 0:
            return RateDecision(True, 0)
        now = time.time()
        window = int(now // self.window_seconds)
        key = f"copilot:rate:{self.scope}:{subject}:{window}"
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, self.window_seconds + 5)
                count, _ = await pipe.execute()
        except RedisError as failure:
            log.warning("%s rate check skipped, Redis unavailable: %s", self.scope, type(failure).__name__)
            return RateDecision(True, 0)
        retry_after = max(1, int((window + 1) * self.window_seconds - now))
        return RateDecision(count <= self.limit, 0 if count <= self.limit else retry_after)
