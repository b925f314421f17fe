from redis.asyncio import Redis

# Longer than the longest blocking XREAD the reader issues (MAX_BLOCK_SECONDS); redis-py's
# default of 5 s would cut a quiet stream with a timeout error.
SOCKET_TIMEOUT_SECONDS = 30.0
# Every open SSE stream holds one connection for its blocking XREAD, so the pool must be at
# least as large as the streams one API process serves; redis-py's default of 100 refused the
# 101st concurrent stream with "Too many connections". Redis itself accepts 10,000 clients.
MAX_CONNECTIONS = 10_000


def redis_client(url: str) -> Redis:
    # Text in, text out: every value this project stores in Redis is JSON or a plain string.
    return Redis.from_url(url, decode_responses=True, health_check_interval=30, max_connections=MAX_CONNECTIONS,
                          socket_timeout=SOCKET_TIMEOUT_SECONDS, socket_connect_timeout=5)
