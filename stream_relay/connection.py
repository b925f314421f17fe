from redis.asyncio import Redis

# Longer than the longest blocking XREAD the reader issues (MAX_BLOCK_SECONDS); redis-py's
# default of 5 s would cut a quiet stream with a timeout error.
SOCKET_TIMEOUT_SECONDS = 30.0


def redis_client(url: str) -> Redis:
    # Text in, text out: every value this project stores in Redis is JSON or a plain string.
    return Redis.from_url(url, decode_responses=True, health_check_interval=30,
                          socket_timeout=SOCKET_TIMEOUT_SECONDS, socket_connect_timeout=5)
