"""The built-in offline model, through the real `openai` client and through a whole turn."""

import asyncio
import uuid

import httpx
from openai import AsyncOpenAI

from api.main import create_app
from local.model.server import Pacing
from local.model.server import create_app as create_offline_app
from local.stack.process import free_port
from tests.support.helpers import new_session, send, session_rows
from tests.support.servers import serve, shutdown
from tests.support.sse_client import assert_well_formed, part_types
from worker import build_worker


def fast_pacing() -> Pacing:
    pacing = Pacing()
    pacing.first_token_delay, pacing.tokens_per_second, pacing.answer_words = 0.0, 0, 30
    return pacing


async def test_offline_model_streams_reasoning_tool_calls_and_cost():
    port = free_port()
    server, task = await serve(create_offline_app(fast_pacing()), port)
    try:
        client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="offline", max_retries=0)
        tools = [{"type": "function", "function": {"name": "get_current_time", "parameters": {"type": "object"}}}]

        async def collect(content: str, **extra):
            stream = await client.chat.completions.create(
                model="anthropic/x", stream=True, messages=[{"role": "user", "content": content}], tools=tools,
                extra_body=extra)
            return [c async for c in stream]

        answer = await collect("Explain workflows")
        text = "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
        assert text.startswith("You asked: “Explain workflows”.") and len(text.split()) == 30
        assert answer[-1].usage.model_extra["cost"] > 0
        assert text == "".join(c.choices[0].delta.content or "" for c in await collect("Explain workflows") if c.choices)

        thinking = await collect("What time is it?", reasoning={"max_tokens": 100})
        assert any((c.choices[0].delta.model_extra or {}).get("reasoning") for c in thinking if c.choices)
        fragments = [c.choices[0].delta.tool_calls[0] for c in thinking if c.choices and c.choices[0].delta.tool_calls]
        assert fragments[0].function.name == "get_current_time" and len(fragments) > 2
        assert "".join(f.function.arguments or "" for f in fragments) == '{"timezone": "UTC"}'
    finally:
        await shutdown(server, task)


async def test_a_whole_turn_on_the_offline_model(settings, temporal_client, stack, user):
    model_port, api_port = free_port(), free_port()
    offline = settings.model_copy(update={
        "temporal_task_queue": f"offline-{uuid.uuid4().hex[:8]}", "model_base_url": "",
        "offline_model_url": f"http://127.0.0.1:{model_port}/v1", "fast_model": "anthropic/claude-sonnet-4"})
    model_server, model_task = await serve(create_offline_app(fast_pacing()), model_port)
    worker = build_worker(temporal_client, offline)
    worker_task = asyncio.create_task(worker.run())
    api_server, api_task = await serve(create_app(offline), api_port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=30) as http:
            session_id = await new_session(http, user)
            events = await send(http, user, session_id, "What time is it?")
        assert_well_formed(events)
        types = part_types(events)
        for expected in ("reasoning-delta", "tool-input-available", "tool-output-available", "text-delta"):
            assert expected in types
        rows = await session_rows(stack.database_url, session_id)
        assert [r["role"] for r in rows] == ["user", "reasoning", "assistant", "tool", "reasoning", "assistant"]
        assert rows[-1]["content"].startswith("The tool answered:")
    finally:
        await shutdown(api_server, api_task)
        await worker.shutdown()
        await shutdown(model_server, model_task)
        await asyncio.gather(worker_task, return_exceptions=True)
