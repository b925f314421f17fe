"""What a model round reads from a provider's chunks (cache-write tokens, reasoning deltas) and
what it sends to one (Anthropic routes only: reasoning budget, cache markers, the beta header)."""

import pytest
from openai.types import CompletionUsage
from pydantic import ValidationError

from activities.llm import build_request, is_anthropic_route
from models.turn import ModelMessage, RoundRequest
from settings import Settings
from stream_relay.round_assembler import reasoning_delta, reasoning_text, usage_from_chunk
from tools.registry import DEFAULT_TOOLS


def usage(**fields) -> CompletionUsage:
    """A usage object as the pinned `openai` client parses it from a stream."""
    return CompletionUsage.model_validate({"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105,
                                           **fields})


def test_cache_write_tokens_from_the_typed_details_field():
    parsed = usage(prompt_tokens_details={"cached_tokens": 7, "cache_write_tokens": 40})
    assert parsed.prompt_tokens_details.cache_write_tokens == 40  # typed: not in the extra fields
    assert usage_from_chunk(parsed).cache_write_tokens == 40
    assert usage_from_chunk(parsed).cache_read_tokens == 7


def test_cache_write_tokens_from_the_extra_fields():
    assert usage_from_chunk(usage(cache_write_tokens=41)).cache_write_tokens == 41
    assert usage_from_chunk(usage(cache_creation_input_tokens=42)).cache_write_tokens == 42
    assert usage_from_chunk(usage(prompt_tokens_details={"cache_creation_input_tokens": 43})).cache_write_tokens == 43


def test_cache_write_tokens_are_read_in_the_seeds_order():
    everywhere = usage(prompt_tokens_details={"cache_write_tokens": 1, "cache_creation_input_tokens": 4},
                       cache_write_tokens=2, cache_creation_input_tokens=3)
    assert usage_from_chunk(everywhere).cache_write_tokens == 1
    assert usage_from_chunk(usage(cache_write_tokens=2, cache_creation_input_tokens=3)).cache_write_tokens == 2


def test_a_cache_write_count_that_cannot_be_one_is_skipped():
    assert usage_from_chunk(usage(cache_write_tokens="12", cache_creation_input_tokens=9)).cache_write_tokens == 9
    assert usage_from_chunk(usage(cache_write_tokens=-3)).cache_write_tokens == 0
    assert usage_from_chunk(usage(cache_write_tokens=True)).cache_write_tokens == 0
    assert usage_from_chunk(usage()).cache_write_tokens == 0


def test_a_reasoning_detail_with_no_type_is_text():
    assert reasoning_text({"reasoning_details": [{"text": "plain"}]}) == "plain"
    assert reasoning_text({"reasoning_details": [{"type": None, "text": "a"}, {"type": "reasoning.text", "text": "b"},
                                                 {"type": "reasoning.summary", "summary": "c"}]}) == "abc"
    assert reasoning_delta({"reasoning_details": [{"text": "plain"}]}).malformed is None


def test_unknown_and_encrypted_reasoning_details_are_not_shown_even_with_text():
    details = [{"type": "reasoning.encrypted", "data": "opaque", "text": "hidden"},
               {"type": "reasoning.redacted_thinking", "text": "hidden too"}, {"type": "text", "text": "shown"}]
    delta = reasoning_delta({"reasoning_details": details})
    assert delta.text == "shown" and delta.malformed is None


@pytest.mark.parametrize("details, problem", [
    (42, "reasoning_details is int, not a list"),
    ({"type": "reasoning.text", "text": "SECRET"}, "reasoning_details is dict, not a list"),
    ("SECRET thoughts", "reasoning_details is str, not a list"),
    (["SECRET thoughts"], "an entry is str"),
    ([{"type": 3, "text": "SECRET"}], "an entry's type is int"),
    ([{"type": "reasoning.text", "text": ["SECRET"]}], "an entry's text is list"),
    ([{"type": "reasoning.summary", "summary": {"SECRET": 1}}], "an entry's summary is dict"),
])
def test_a_malformed_reasoning_details_is_reported_without_its_content(details, problem):
    delta = reasoning_delta({"reasoning_details": details})
    assert delta.text == "" and delta.malformed == problem
    assert "SECRET" not in problem


def test_the_readable_entries_of_a_partly_malformed_list_are_kept():
    delta = reasoning_delta({"reasoning_details": [7, {"type": "reasoning.text", "text": "kept"}, None]})
    assert delta.text == "kept" and delta.malformed == "an entry is NoneType; an entry is int"


def test_string_shapes_come_before_reasoning_details():
    assert reasoning_text({"reasoning": "a", "reasoning_details": 42}) == "a"
    assert reasoning_delta({"reasoning_content": "b", "reasoning_details": 42}).malformed is None
    assert reasoning_delta({}) == reasoning_delta({"reasoning_details": None}) == reasoning_delta({"reasoning": ""})


@pytest.mark.parametrize("model", ["anthropic/claude-sonnet-4", "claude-sonnet-4-5", "claude-3-5-haiku-20241022",
                                   "anthropic.claude-3-7-sonnet-20250219-v1:0", "Anthropic/Claude-Opus-4",
                                   "us.anthropic.claude-sonnet-4-20250514-v1:0"])
def test_anthropic_routes(model):
    assert is_anthropic_route(model)


@pytest.mark.parametrize("model", ["openai/gpt-4o", "google/gemini-2.5-pro", "meta-llama/llama-3-70b", "offline"])
def test_other_routes(model):
    assert not is_anthropic_route(model)


HISTORY = [ModelMessage(role="system", content="sys"), ModelMessage(role="user", content="hi")]
REQUEST = RoundRequest(session_id="s", turn_id="t", stream_key="k", round_index=0, mode="fast",
                       allowed_tools=list(DEFAULT_TOOLS))


def body_for(model: str, **changes) -> dict:
    settings = Settings(_env_file=None, fast_model=model, **changes)
    return build_request(settings, REQUEST, HISTORY, DEFAULT_TOOLS)


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "anthropic.claude-3-7-sonnet-20250219-v1:0"])
def test_every_anthropic_id_gets_markers_budget_and_header(model):
    body = body_for(model)
    marker = {"type": "ephemeral", "ttl": "1h"}
    assert body["messages"][0]["content"][0]["cache_control"] == marker and body["tools"][-1]["cache_control"] == marker
    assert body["extra_body"]["reasoning"] == {"max_tokens": 8192}
    assert body["extra_headers"] == {"anthropic-beta": "extended-cache-ttl-2025-04-11"}


def test_the_five_minute_ttl_needs_no_beta_header():
    body = body_for("claude-sonnet-4-5", prompt_cache_ttl="5m")
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral", "ttl": "5m"}
    assert "extra_headers" not in body


def test_other_routes_get_no_markers_budget_or_header():
    body = body_for("openai/gpt-4o", reasoning_max_tokens=4096)
    assert "reasoning" not in body["extra_body"] and "extra_headers" not in body
    assert body["messages"][0] == {"role": "system", "content": "sys"}
    assert all("cache_control" not in tool for tool in body["tools"])


def test_the_reasoning_budget_is_0_to_128000_and_the_ttl_5m_or_1h():
    assert Settings(_env_file=None, reasoning_max_tokens=128_000).reasoning_max_tokens == 128_000
    assert "reasoning" not in body_for("claude-sonnet-4-5", reasoning_max_tokens=0)["extra_body"]
    for wrong in ({"reasoning_max_tokens": 128_001}, {"reasoning_max_tokens": -1}, {"prompt_cache_ttl": "10m"}):
        with pytest.raises(ValidationError):
            Settings(_env_file=None, **wrong)
    assert Settings(_env_file=None).prompt_cache_ttl == "1h"
