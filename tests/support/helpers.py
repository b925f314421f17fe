import asyncio
import time
import uuid
from typing import Awaitable, Callable, TypeVar

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.scripted_model import Stream, text_reply
from tests.support.sse_client import Event, read_events

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout: float = 15.0) -> T:
    """Polls `probe` until `check` holds for its value; fails with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {timeout} s")
        await asyncio.sleep(0.05)


def marker() -> str:
    """A unique tag that routes a test's model requests to its own script."""
    return f"[t-{uuid.uuid4().hex[:12]}]"


async def new_session(http: httpx.AsyncClient, user) -> str:
    response = await http.post("/api/chat/sessions", json={}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def send(http: httpx.AsyncClient, user, session_id: str, message: str, limit: int | None = None) -> list[Event]:
    async with http.stream("POST", f"/api/chat/sessions/{session_id}/stream", json={"message": message},
                           headers=user.headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
        assert response.headers["content-type"].startswith("text/event-stream")
        return await read_events(response, limit)


async def queue(http: httpx.AsyncClient, user, session_id: str, message: str) -> httpx.Response:
    """Sends a message without reading a stream: the answer to a follow-up is `202` (or a refusal)."""
    return await http.post(f"/api/chat/sessions/{session_id}/stream", json={"message": message}, headers=user.headers)


async def follow(http: httpx.AsyncClient, user, session_id: str, last_event_id: str | None = None,
                 limit: int | None = None) -> list[Event]:
    headers = dict(user.headers)
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    async with http.stream("GET", f"/api/chat/sessions/{session_id}/stream", headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        return await read_events(response, limit)


async def db_rows(database_url: str, sql: str, **params) -> list[dict]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return [dict(r._mapping) for r in (await connection.execute(text(sql), params))]
    finally:
        await engine.dispose()


async def session_rows(database_url: str, session_id: str) -> list[dict]:
    return await db_rows(database_url, "SELECT role, content, tool_calls, tool_call_id, sequence FROM chat_messages "
                                       "WHERE session_id = :sid ORDER BY sequence", sid=session_id)


def slow_text(words: int = 80, delay: float = 0.05) -> Stream:
    return text_reply(" ".join(f"w{i}" for i in range(words)), delay=delay)


async def start_turn(http, user, session_id: str, message: str, read: int = 3):
    """Sends a message, reads the first events, and leaves the turn running."""
    async with http.stream("POST", f"/api/chat/sessions/{session_id}/stream", json={"message": message},
                           headers=user.headers) as response:
        assert response.status_code == 200
        return await read_events(response, limit=read)


async def stop(http, user, session_id: str):
    response = await http.post(f"/api/chat/sessions/{session_id}/stop", headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()
