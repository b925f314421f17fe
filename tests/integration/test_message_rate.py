"""The per-user message rate, on a real Redis; it fails open when Redis is down."""

import uuid

from redis.asyncio import Redis

from limits.message_rate import MessageRateLimiter
from local.stack.process import free_port
from stream_relay.connection import redis_client


async def test_the_limit_refuses_beyond_the_window_count(stack):
    redis = redis_client(stack.redis_url)
    limiter = MessageRateLimiter(redis, limit=3, window_seconds=60)
    user_id = f"u-{uuid.uuid4().hex}"
    decisions = [await limiter.hit(user_id) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert 1 <= decisions[-1].retry_after_seconds <= 60
    assert (await limiter.hit(f"u-{uuid.uuid4().hex}")).allowed  # per user
    await redis.aclose()


async def test_redis_down_fails_open(caplog):
    redis = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    decision = await MessageRateLimiter(redis, limit=1, window_seconds=60).hit("someone")
    assert decision.allowed
    assert "Redis unavailable" in caplog.text
    await redis.aclose()


async def test_the_api_answers_429_with_retry_after(http, settings, scripted):
    from tests.support.helpers import new_session
    from tests.support.users import make_user

    user = make_user(settings)
    session_id = await new_session(http, user)
    limiter = MessageRateLimiter(redis_client(settings.redis_url), settings.message_rate_limit,
                                 settings.message_rate_window_seconds)
    for _ in range(settings.message_rate_limit):
        await limiter.hit(user.id)  # the user's earlier messages in this window

    response = await http.post(f"/api/chat/sessions/{session_id}/stream", json={"message": "hi"},
                               headers=user.headers)
    assert response.status_code == 429 and response.json()["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1
    detail = (await http.get(f"/api/chat/sessions/{session_id}", headers=user.headers)).json()
    assert detail["messages"] == []
