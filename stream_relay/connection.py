from redis.asyncio import Redis


def redis_client(url: str) -> Redis:
    # Text in, text out: every value this project stores in Redis is JSON or a plain string.
    return Redis.from_url(url, decode_responses=True, health_check_interval=30)
