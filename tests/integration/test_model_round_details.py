"""Money and reasoning details of a real model round (worker, scripted model, PostgreSQL): the
cache-write tokens a provider reports wherever it reports them, a malformed `reasoning_details`
that must not fail the round, and what an Anthropic route (and only one) is sent."""

import asyncio
import uuid
from contextlib import asynccontextmanager
from typing import AsyncIterator

import httpx
import pytest

from api.main import create_app
from local.model import chunks
from local.stack.process import free_port
from tests.support.extra_tools import TEST_TOOLS
from tests.support.helpers import db_rows, eventually, marker, new_session, send, session_rows
from tests.support.scripted_model import Stream
from tests.support.servers import serve, shutdown
from tests.support.sse_client import assembled_text, assert_well_formed, part_types
from worker import build_worker


def usage_chunk(**fields) -> dict:
    chunk = chunks.usage(120, 8, 0.00042)
    chunk["usage"].update(fields)
    return chunk


async def usage_rows(database_url: str, session_id: str) -> list[dict]:
    return await db_rows(database_url, "SELECT prompt_tokens, cache_read_tokens, cache_write_tokens, "
                                       "cost_microdollars FROM model_usage WHERE session_id = :sid", sid=session_id)


@pytest.mark.parametrize("reported", [
    {"prompt_tokens_details": {"cached_tokens": 30, "cache_write_tokens": 64}},  # the client's typed field
    {"prompt_tokens_details": {"cached_tokens": 30}, "cache_write_tokens": 64},
    {"prompt_tokens_details": {"cached_tokens": 30}, "cache_creation_input_tokens": 64},  # Anthropic's name
], ids=["typed-details-field", "cache_write_tokens", "cache_creation_input_tokens"])
async def test_cache_write_tokens_are_recorded_wherever_the_chunk_reports_them(http, user, scripted, stack, reported):
    tag = marker()
    scripted.script(tag, Stream([chunks.text("Cached."), chunks.finish("stop"), usage_chunk(**reported)]))
    session_id = await new_session(http, user)

    await send(http, user, session_id, f"hi {tag}")

    rows = await eventually(lambda: usage_rows(stack.database_url, session_id), lambda rows: len(rows) == 1)
    assert rows == [{"prompt_tokens": 120, "cache_read_tokens": 30, "cache_write_tokens": 64,
                     "cost_microdollars": 420}]


async def test_a_malformed_reasoning_details_is_ignored_and_the_round_goes_on(http, user, scripted, stack, caplog):
    tag = marker()
    malformed = [
        chunks.chunk({"role": "assistant", "content": None, "reasoning_details": 42}),
        chunks.chunk({"role": "assistant", "content": None, "reasoning_details": {"text": "SECRET-1"}}),
        chunks.chunk({"role": "assistant", "content": None,
                      "reasoning_details": ["SECRET-2", {"type": 7, "text": "SECRET-3"},
                                            {"type": "reasoning.text", "text": "Readable."}]}),
    ]
    scripted.script(tag, Stream([*malformed, chunks.text("The answer."), chunks.finish("stop"),
                                 chunks.usage(1, 1, 0.0001)]))
    session_id = await new_session(http, user)

    with caplog.at_level("WARNING", logger="activities.llm"):
        events = await send(http, user, session_id, f"think {tag}")

    assert_well_formed(events)
    assert "error" not in part_types(events) and assembled_text(events) == "The answer."
    rows = await session_rows(stack.database_url, session_id)
    assert [(r["role"], r["content"]) for r in rows[1:]] == [("reasoning", "Readable."), ("assistant", "The answer.")]
    assert len(scripted.requests_for(tag)) == 1  # the round was not retried
    warnings = [r.getMessage() for r in caplog.records if "malformed reasoning_details" in r.getMessage()]
    assert len(warnings) == 1 and "SECRET" not in warnings[0]  # once per round, and no content


@asynccontextmanager
async def api_and_worker_on(settings, temporal_client, **changes) -> AsyncIterator[httpx.AsyncClient]:
    """The API and a worker of their own (own task queue) on other settings, such as another model id."""
    isolated = settings.model_copy(update={"temporal_task_queue": f"route-{uuid.uuid4().hex[:8]}", **changes})
    worker = build_worker(temporal_client, isolated, TEST_TOOLS)
    worker_task = asyncio.create_task(worker.run())
    port = free_port()
    server, api_task = await serve(create_app(isolated, TEST_TOOLS), port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        await shutdown(server, api_task)
        await worker.shutdown()
        await asyncio.gather(worker_task, return_exceptions=True)


async def test_an_anthropic_id_gets_cache_markers_the_beta_header_and_the_budget(settings, temporal_client, user,
                                                                               scripted):
    tag = marker()
    async with api_and_worker_on(settings, temporal_client, fast_model="claude-sonnet-4-5",
                                 reasoning_max_tokens=2048) as http:
        await send(http, user, await new_session(http, user), f"hi {tag}")

    body, headers = scripted.requests_for(tag)[0], scripted.headers_for(tag)[0]
    assert body["model"] == "claude-sonnet-4-5"
    assert headers["anthropic-beta"] == "extended-cache-ttl-2025-04-11"
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert all("cache_control" not in tool for tool in body["tools"][:-1])
    assert all(isinstance(m["content"], str) for m in body["messages"][1:])  # no markers past the prefix
    assert body["reasoning"] == {"max_tokens": 2048}


async def test_a_non_anthropic_id_gets_no_markers_no_header_and_no_budget(http, settings, user, scripted):
    tag = marker()
    assert settings.fast_model == "openai/gpt-test"
    await send(http, user, await new_session(http, user), f"hi {tag}")

    body, headers = scripted.requests_for(tag)[0], scripted.headers_for(tag)[0]
    assert "anthropic-beta" not in headers and "reasoning" not in body
    assert "cache_control" not in str(body)
