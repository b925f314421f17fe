"""A lean HTTP/1.1 SSE client that timestamps every `text-delta` as it arrives.

Hundreds of streams share one client process on a 2-core machine, so the client must cost far
less than what it measures: it reads raw socket chunks, decodes chunked transfer encoding and
only looks for part types with a byte search, never parsing the JSON of a delta. Parts that
arrive in the same socket read get the same timestamp, which is when the client could see them.
"""

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any, Optional

TEXT_DELTA = b'"type":"text-delta"'
ERROR = b'"type":"error"'
DONE = b"data: [DONE]"


@dataclass
class StreamResult:
    status: int = 0
    started: float = 0.0           # perf_counter when the request was sent
    started_wall: float = 0.0      # the same instant on the wall clock (to compare with server stamps)
    headers_at: Optional[float] = None  # when the response head arrived
    finished: Optional[float] = None    # when the answer had been read to its end
    token_times: list[float] = field(default_factory=list)  # one per text-delta part
    errors: int = 0                # `error` parts in the stream
    done: bool = False             # saw `data: [DONE]`
    body: bytes = b""              # non-streaming answers (202, 4xx) keep their body
    failure: Optional[str] = None  # transport problems and timeouts

    @property
    def ok(self) -> bool:
        return self.failure is None and self.status == 200 and self.done and not self.errors

    @property
    def first_token(self) -> Optional[float]:
        return self.token_times[0] - self.started if self.token_times else None

    @property
    def head_latency(self) -> Optional[float]:
        return self.headers_at - self.started if self.headers_at is not None else None

    @property
    def total(self) -> Optional[float]:
        return self.finished - self.started if self.finished is not None else None

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.token_times, self.token_times[1:])]

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class _Events:
    """Splits a byte stream into SSE events and counts what the benchmarks need."""

    def __init__(self, result: StreamResult):
        self.result = result
        self.buffer = b""

    def feed(self, data: bytes, now: float) -> None:
        self.buffer += data
        *events, self.buffer = self.buffer.split(b"\n\n")
        for event in events:
            if TEXT_DELTA in event:
                self.result.token_times.append(now)
            elif ERROR in event:
                self.result.errors += 1
            elif DONE in event:
                self.result.done = True


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def _read_chunked(reader: asyncio.StreamReader, sink) -> None:
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return
        data = await reader.readexactly(size + 2)
        sink(data[:-2])


async def request(host: str, port: int, method: str, path: str, body: Optional[dict] = None,
                  headers: Optional[dict[str, str]] = None, timeout: float = 120.0,
                  head_only: bool = False) -> StreamResult:
    """Sends one request and reads the answer to its end; an SSE answer is timed part by part.

    With `head_only` an SSE answer is hung up on as soon as its head arrives (other answers
    are still read), as a client that only wanted the turn started would.
    """
    result = StreamResult()
    payload = json.dumps(body).encode() if body is not None else b""
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close",
            "Accept: text/event-stream", f"Content-Length: {len(payload)}"]
    if body is not None:
        head.append("Content-Type: application/json")
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
            result.started, result.started_wall = time.perf_counter(), time.time()
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
            result.status, response_headers = await _read_head(reader)
            result.headers_at = time.perf_counter()
            streaming = response_headers.get("content-type", "").startswith("text/event-stream")
            if streaming and head_only:
                return result
            events = _Events(result)
            chunks: list[bytes] = []

            def sink(data: bytes) -> None:
                if streaming:
                    events.feed(data, time.perf_counter())
                else:
                    chunks.append(data)

            if response_headers.get("transfer-encoding", "").lower() == "chunked":
                await _read_chunked(reader, sink)
            elif "content-length" in response_headers:
                sink(await reader.readexactly(int(response_headers["content-length"])))
            else:
                while data := await reader.read(65536):
                    sink(data)
            result.body = b"".join(chunks)
            result.finished = time.perf_counter()
    except TimeoutError:
        result.failure = "timeout"
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as problem:
        result.failure = type(problem).__name__
    finally:
        if writer is not None:
            writer.close()
    return result
