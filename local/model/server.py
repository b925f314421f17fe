"""The offline model's HTTP server: `uvicorn local.model.server:app --port 8001`.

It answers `POST /v1/chat/completions` (streaming) like a hosted model: a first-token delay, a
steady token rate, reasoning deltas when the request asks for reasoning, a tool call when the
user's message asks for one of the offered tools (`tool_phrases.py`), and a final chunk with
usage and cost. The same request always gets the same answer.
"""

import asyncio
import hashlib
import json
import os
import uuid
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from local.model import chunks
from local.model.tool_phrases import GUIDE_TOOL, NEEDS_GUIDE, tool_call_for, without_builder_context

# USD per token; small and fixed, so cost accounting has something real to count.
PROMPT_PRICE = 0.000001
COMPLETION_PRICE = 0.000004

VOCABULARY = (
    "durable workflows keep every turn safe while tokens stream to your screen and the assistant "
    "thinks about tools context cost limits and the next step it should take for you"
).split()


class Pacing:
    def __init__(self) -> None:
        self.first_token_delay = float(os.environ.get("OFFLINE_MODEL_FIRST_TOKEN_DELAY_MS", "400")) / 1000
        self.tokens_per_second = float(os.environ.get("OFFLINE_MODEL_TOKENS_PER_SECOND", "40"))
        self.answer_words = int(os.environ.get("OFFLINE_MODEL_ANSWER_WORDS", "120"))

    async def between_tokens(self) -> None:
        if self.tokens_per_second > 0:
            await asyncio.sleep(1 / self.tokens_per_second)


def _last(messages: list[dict], role: str) -> dict | None:
    return next((m for m in reversed(messages) if m.get("role") == role), None)


def _content_text(message: dict | None) -> str:
    content = (message or {}).get("content") or ""
    if isinstance(content, list):
        return " ".join(block.get("text", "") for block in content if isinstance(block, dict))
    return content


def _called(messages: list[dict]) -> list[str]:
    """The names of the tools called so far, in order."""
    return [call.get("function", {}).get("name") for m in messages if m.get("role") == "assistant"
            for call in m.get("tool_calls") or []]


def _answer_words(prompt: str, count: int) -> list[str]:
    """A deterministic answer: an opening that quotes the prompt, then words picked by its hash."""
    words = f"You asked: “{prompt[:120]}”. Here is my answer.".split()
    seed = int(hashlib.sha256(prompt.encode()).hexdigest(), 16)
    step = seed % 5 + 1
    while len(words) < count:
        words.append(VOCABULARY[(seed + step * len(words)) % len(VOCABULARY)])
    return words


def plan_answer(body: dict[str, Any], answer_words: int) -> dict[str, Any]:
    """What the offline model will say to this request: reasoning, a tool call or text."""
    messages = body.get("messages") or []
    offered = {t.get("function", {}).get("name") for t in body.get("tools") or []}
    last = messages[-1] if messages else {}
    user_text = without_builder_context(_content_text(_last(messages, "user")))
    plan: dict[str, Any] = {"reasoning": [], "tool_call": None, "text": []}
    if body.get("reasoning"):
        plan["reasoning"] = "Let me work out the most useful way to answer this.".split(" ")
    called = _called(messages)
    asked = tool_call_for(user_text, offered)
    if last.get("role") == "tool":
        # The guide read for an agent tool the message asked for: now that tool.
        if asked and asked["name"] in NEEDS_GUIDE and called[-1:] == [GUIDE_TOOL]:
            plan["tool_call"] = asked
        else:
            plan["text"] = f"The tool answered: {_content_text(last)[:300]}".split(" ")
    elif asked is not None:
        # Like a model that read the tool's description: the guide first, where it is offered.
        needs_guide = asked["name"] in NEEDS_GUIDE and GUIDE_TOOL in offered and GUIDE_TOOL not in called
        plan["tool_call"] = {"name": GUIDE_TOOL, "arguments": "{}"} if needs_guide else asked
    else:
        plan["text"] = _answer_words(user_text, answer_words)
    return plan


async def stream_answer(body: dict[str, Any], pacing: Pacing) -> AsyncIterator[bytes]:
    plan = plan_answer(body, pacing.answer_words)
    prompt_tokens = sum(len(_content_text(m)) for m in body.get("messages") or []) // 4 + 1
    completion_tokens = 0
    await asyncio.sleep(pacing.first_token_delay)
    for i, word in enumerate(plan["reasoning"]):
        yield chunks.sse(chunks.reasoning(word if i == 0 else " " + word))
        completion_tokens += 1
        await pacing.between_tokens()
    if plan["tool_call"]:
        call_id = f"call_{uuid.uuid4().hex[:16]}"
        arguments = plan["tool_call"]["arguments"]
        # Arguments arrive split across chunks, as hosted models send them.
        pieces = [arguments[i:i + 6] for i in range(0, len(arguments), 6)]
        yield chunks.sse(chunks.tool_call(0, "", call_id=call_id, name=plan["tool_call"]["name"]))
        for piece in pieces:
            yield chunks.sse(chunks.tool_call(0, piece))
            completion_tokens += 1
            await pacing.between_tokens()
        finish_reason = "tool_calls"
    else:
        for i, word in enumerate(plan["text"]):
            yield chunks.sse(chunks.text(word if i == 0 else " " + word))
            completion_tokens += 1
            await pacing.between_tokens()
        finish_reason = "stop"
    yield chunks.sse(chunks.finish(finish_reason))
    cost = prompt_tokens * PROMPT_PRICE + completion_tokens * COMPLETION_PRICE
    yield chunks.sse(chunks.usage(prompt_tokens, completion_tokens, round(cost, 9)))
    yield chunks.SSE_DONE


def create_app(pacing: Pacing | None = None) -> FastAPI:
    pacing = pacing or Pacing()
    app = FastAPI(title="Offline model", docs_url=None, redoc_url=None)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": "offline", "object": "model"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return JSONResponse({"error": {"message": "invalid JSON"}}, status_code=400)
        if not body.get("stream"):
            return JSONResponse({"error": {"message": "the offline model only streams; set stream: true"}},
                                status_code=400)
        return StreamingResponse(stream_answer(body, pacing), media_type="text/event-stream")

    return app


app = create_app()
