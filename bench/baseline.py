"""The direct baseline: what a copilot without durable orchestration would do.

    BENCH_MODEL_URL=http://127.0.0.1:PORT/v1 uvicorn bench.baseline:app

`POST /stream` `{"message": "...", "history": [{"role", "content"}, ...]}` calls the model with
the same `openai` client and the same request body the worker sends (system prompt, history, tool
schemas: `activities.llm.build_request`), turns the deltas into the same UI-stream parts with
the same assembler, and relays them as Server-Sent Events. No Temporal, no Redis, no database:
the difference between this and `POST /api/chat/sessions/{id}/stream` is what the orchestration
costs.
"""

import json
import os
import uuid
from typing import Any, AsyncIterator

import httpx
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from openai import AsyncOpenAI
from pydantic import BaseModel

from activities.llm import build_request
from conversation.history import SYSTEM_PROMPT
from models import ui_stream
from models.turn import ModelMessage, RoundRequest
from settings import Settings
from stream_relay.round_assembler import RoundAssembler
from tools.registry import DEFAULT_TOOLS


class BaselineRequest(BaseModel):
    message: str
    history: list[dict[str, Any]] = []


def _event(event_id: int, part: dict) -> str:
    return f"id: {event_id}\ndata: {json.dumps(part, separators=(',', ':'))}\n\n"


def create_app(model_url: str, model: str) -> FastAPI:
    settings = Settings(_env_file=None, model_base_url=model_url, model_api_key="bench", fast_model=model)
    client = AsyncOpenAI(base_url=model_url, api_key="bench", max_retries=0,
                         timeout=httpx.Timeout(settings.llm_round_timeout_seconds, connect=10.0))
    app = FastAPI(title="Direct baseline", docs_url=None, redoc_url=None)

    async def relay(request: BaselineRequest) -> AsyncIterator[str]:
        messages = [ModelMessage(role="system", content=SYSTEM_PROMPT),
                    *(ModelMessage.model_validate(m) for m in request.history),
                    ModelMessage(role="user", content=request.message)]
        body = build_request(settings, RoundRequest(
            session_id="baseline", turn_id="baseline", stream_key="", round_index=0, mode="fast",
            allowed_tools=list(DEFAULT_TOOLS)), messages, DEFAULT_TOOLS)
        assembler = RoundAssembler("r0a1")
        counter = 0

        def events(*parts: dict) -> str:
            nonlocal counter
            out = []
            for part in parts:
                counter += 1
                out.append(_event(counter, part))
            return "".join(out)

        yield events(ui_stream.start(str(uuid.uuid4())), ui_stream.start_step())
        stream = await client.chat.completions.create(**body)
        async for chunk in stream:
            parts: list[dict] = []
            for choice in chunk.choices:
                if choice.delta is not None and choice.delta.content:
                    parts += assembler.on_text(choice.delta.content)
            if parts:
                yield events(*parts)
        yield events(*assembler.finish(), ui_stream.finish_step(), ui_stream.finish())
        yield "data: [DONE]\n\n"

    @app.post("/stream")
    async def stream(request: BaselineRequest) -> StreamingResponse:
        header, version = ui_stream.STREAM_HEADER
        return StreamingResponse(relay(request), media_type="text/event-stream",
                                 headers={header: version, "Cache-Control": "no-cache"})

    return app


app = create_app(os.environ.get("BENCH_MODEL_URL", "http://127.0.0.1:8001/v1"),
                 os.environ.get("BENCH_MODEL", "bench/model"))
