"""What a plain SSE client sees: httpx reading lines and parsing the JSON of every event, as an
application (or another team's benchmark) would, timing the whole request.

The lean client (`bench/sse_client.py`) stamps parts by socket read and never parses a delta;
it shows what the server delivers. This one also pays for what the server sends per token (an
`id:` line and a JSON object each), so a stream that sends more bytes or more events per token
than the direct baseline shows it here."""

import json
import time

import httpx


async def stream_rate(url: str, body: dict, headers: dict | None = None, timeout: float = 600.0) -> dict:
    """Tokens per second from sending the request to the last text-delta, and the bytes read."""
    tokens, received = 0, 0
    started = time.perf_counter()
    last = started
    async with httpx.AsyncClient(timeout=timeout) as client:
        async with client.stream("POST", url, json=body, headers=headers or {}) as response:
            async for line in response.aiter_lines():
                received += len(line) + 1
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                part = json.loads(line[6:])
                if part.get("type") == "text-delta":
                    tokens += 1
                    last = time.perf_counter()
    span = last - started
    return {"tokens": tokens, "seconds": round(span, 3), "tokens_per_s": round(tokens / span) if span > 0 else None,
            "bytes_per_token": round(received / tokens) if tokens else None}
