"""The offline model, paced per request, for the benchmarks: `uvicorn bench.model_server:app`.

One model server serves every benchmark of a run, so the pacing comes with each request rather
than from the environment: the last user message may carry a directive such as

    [bench words=20000 tps=0 delay_ms=0 tools=5]

words: answer length in tokens (one word per chunk); tps: tokens per second (0 = as fast as it can);
delay_ms: first-token delay; tools: model rounds that call `get_current_time` before the answer.
Text answers are the offline model's own (`local.model.server.stream_answer`), so the system and
the direct baseline parse exactly what a user of `make dev` would get.
"""

import asyncio
import json
import re
import uuid
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from local.model import chunks
from local.model.server import Pacing, _content_text, stream_answer

DIRECTIVE = re.compile(r"\[bench ([^\]]*)\]")
TOOL = "get_current_time"


def directive(words: int = 20, tps: float = 0, delay_ms: float = 0, tools: int = 0) -> str:
    return f"[bench words={words} tps={tps:g} delay_ms={delay_ms:g} tools={tools}]"


def _settings(messages: list[dict]) -> dict[str, float]:
    """The directive of the last user message (defaults: 20 words, no delay, no tools)."""
    found = {"words": 20.0, "tps": 0.0, "delay_ms": 0.0, "tools": 0.0}
    user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    match = DIRECTIVE.search(_content_text(user))
    if match:
        for pair in match.group(1).split():
            name, _, value = pair.partition("=")
            if name in found:
                found[name] = float(value)
    return found


def _tool_rounds_done(messages: list[dict]) -> int:
    """Tool results since the last user message: how many tool rounds this turn has had."""
    done = 0
    for message in reversed(messages):
        if message.get("role") == "user":
            break
        done += message.get("role") == "tool"
    return done


async def _tool_call_round(pacing: Pacing) -> AsyncIterator[bytes]:
    await asyncio.sleep(pacing.first_token_delay)
    yield chunks.sse(chunks.tool_call(0, "", call_id=f"call_{uuid.uuid4().hex[:16]}", name=TOOL))
    yield chunks.sse(chunks.tool_call(0, json.dumps({"timezone": "UTC"})))
    yield chunks.sse(chunks.finish("tool_calls"))
    yield chunks.sse(chunks.usage(100, 2, 0.000108))
    yield chunks.SSE_DONE


def create_app() -> FastAPI:
    app = FastAPI(title="Benchmark model", docs_url=None, redoc_url=None)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> StreamingResponse:
        body: dict[str, Any] = await request.json()
        messages = body.get("messages") or []
        wanted = _settings(messages)
        pacing = Pacing()
        pacing.first_token_delay = wanted["delay_ms"] / 1000
        pacing.tokens_per_second = wanted["tps"]
        pacing.answer_words = int(wanted["words"])
        offered = {t.get("function", {}).get("name") for t in body.get("tools") or []}
        if TOOL in offered and _tool_rounds_done(messages) < wanted["tools"]:
            return StreamingResponse(_tool_call_round(pacing), media_type="text/event-stream")
        # The offline model would call the tool itself when the prompt mentions the time; the
        # directive decides here, so the answer is text unless tool rounds were asked for.
        body = {**body, "tools": []}
        return StreamingResponse(stream_answer(body, pacing), media_type="text/event-stream")

    return app


app = create_app()
