"""What the model provider is sent: usage accounting always; reasoning and prompt-cache markers
only on Anthropic routes; and a turn never ends in silence."""

from activities.llm import build_request
from local.model import chunks
from models.turn import ModelMessage, RoundRequest
from tests.support.helpers import marker, new_session, send, session_rows
from tests.support.scripted_model import Stream
from tests.support.sse_client import assembled_text, assert_well_formed
from tools.registry import DEFAULT_TOOLS

HISTORY = [ModelMessage(role="system", content="sys"), ModelMessage(role="user", content="hi")]


def round_request() -> RoundRequest:
    return RoundRequest(session_id="s", turn_id="t", stream_key="k", round_index=0, mode="fast",
                        allowed_tools=list(DEFAULT_TOOLS))


def test_anthropic_routes_get_reasoning_budget_and_cache_markers(settings):
    anthropic = settings.model_copy(update={"fast_model": "anthropic/claude-sonnet-4", "reasoning_max_tokens": 8192})
    body = build_request(anthropic, round_request(), HISTORY, DEFAULT_TOOLS)
    assert body["extra_body"] == {"usage": {"include": True}, "reasoning": {"max_tokens": 8192}}
    assert body["max_tokens"] == anthropic.model_max_tokens > 8192  # every round is bounded, reasoning included
    assert body["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert body["extra_headers"] == {"anthropic-beta": "extended-cache-ttl-2025-04-11"}
    assert "cache_control" not in body["messages"][1]


def test_reasoning_off_and_other_providers_get_no_extras(settings):
    off = settings.model_copy(update={"fast_model": "anthropic/claude-sonnet-4", "reasoning_max_tokens": 0})
    assert "reasoning" not in build_request(off, round_request(), HISTORY, DEFAULT_TOOLS)["extra_body"]
    other_provider = settings.model_copy(update={"fast_model": "openai/gpt-4o"})
    other = build_request(other_provider, round_request(), HISTORY, DEFAULT_TOOLS)
    assert other["extra_body"] == {"usage": {"include": True}}
    assert other["messages"][0] == {"role": "system", "content": "sys"}
    assert all("cache_control" not in tool for tool in other["tools"])
    assert "extra_headers" not in other


async def test_the_provider_really_receives_usage_accounting(http, user, scripted):
    tag = marker()
    session_id = await new_session(http, user)
    await send(http, user, session_id, f"hi {tag}")
    request = scripted.requests_for(tag)[0]
    assert request["usage"] == {"include": True} and request["stream"] is True
    assert request["max_tokens"] == 32_768
    assert "reasoning" not in request  # the test model is not an Anthropic route


async def test_reasoning_only_final_round_after_tools_ends_with_a_closing_text(http, user, scripted, stack):
    tag = marker()
    scripted.script(tag,
                    Stream([chunks.tool_call(0, "", call_id="call_t", name="get_current_time"), chunks.tool_call(0, "{}"),
                            chunks.finish("tool_calls"), chunks.usage(1, 1, 0.0001)]),
                    Stream([chunks.reasoning("All done, nothing to add."), chunks.finish(), chunks.usage(1, 1, 0.0001)]))
    session_id = await new_session(http, user)

    events = await send(http, user, session_id, f"time? {tag}")

    assert_well_formed(events)
    assert assembled_text(events).strip()
    rows = await session_rows(stack.database_url, session_id)
    assert rows[-1]["role"] == "assistant" and rows[-1]["content"] == assembled_text(events)
