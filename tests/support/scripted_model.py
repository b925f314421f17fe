"""A scripted OpenAI-compatible model server for tests.

Tests register what the model answers to a conversation (matched by a marker in its first user
message): streams of chunks, HTTP errors, or streams that break midway. The server records every
request it received, so tests assert on what the model was really sent.
"""

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from local.model import chunks


@dataclass
class Stream:
    parts: list[dict[str, Any]]
    delay: float = 0.0           # seconds between chunks
    first_delay: float = 0.0     # seconds before the first chunk
    break_after: Optional[int] = None  # drop the connection after this many chunks


@dataclass
class Fail:
    status: int
    message: str = "scripted failure"


Reply = Union[Stream, Fail]


def text_reply(text: str, cost: Optional[float] = 0.000123, **timing: Any) -> Stream:
    words = text.split(" ")
    parts = [chunks.text(w if i == 0 else " " + w) for i, w in enumerate(words)]
    return Stream([*parts, chunks.finish("stop"), chunks.usage(10, len(words), cost)], **timing)


def tool_call_reply(name: str, arguments: dict, call_id: Optional[str] = None, cost: float = 0.0001) -> Stream:
    """A round that calls one tool."""
    call_id = call_id or f"call_{uuid.uuid4().hex[:8]}"
    return Stream([chunks.tool_call(0, "", call_id=call_id, name=name), chunks.tool_call(0, json.dumps(arguments)),
                   chunks.finish("tool_calls"), chunks.usage(1, 1, cost)])


@dataclass
class ScriptedModel:
    scripts: dict[str, list[Reply]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)  # of each request, in the same order

    def script(self, marker: str, *replies: Reply) -> None:
        self.scripts[marker] = list(replies)

    def requests_for(self, marker: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if marker in _first_user_text(r)]

    def headers_for(self, marker: str) -> list[dict[str, str]]:
        """The HTTP headers (names in lower case) of the requests `requests_for` returns."""
        return [h for r, h in zip(self.requests, self.headers) if marker in _first_user_text(r)]

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        text = _first_user_text(body)
        for marker, replies in self.scripts.items():
            if marker in text and replies:
                # The last reply repeats, so a retried round sees it again.
                return replies.pop(0) if len(replies) > 1 else replies[0]
        return text_reply("Default scripted answer.")


def _first_user_text(body: dict[str, Any]) -> str:
    for message in body.get("messages") or []:
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


async def _stream(reply: Stream):
    await asyncio.sleep(reply.first_delay)
    for index, part in enumerate(reply.parts):
        if reply.break_after is not None and index >= reply.break_after:
            raise ConnectionResetError("scripted broken stream")
        yield chunks.sse(part)
        if reply.delay:
            await asyncio.sleep(reply.delay)
    yield chunks.SSE_DONE


def create_app(model: ScriptedModel) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        body = await request.json()
        model.requests.append(body)
        model.headers.append(dict(request.headers))
        reply = model._next_reply(body)
        if isinstance(reply, Fail):
            return JSONResponse({"error": {"message": reply.message, "code": reply.status}}, status_code=reply.status)
        return StreamingResponse(_stream(reply), media_type="text/event-stream")

    return app
