"""A turn end to end: HTTP in, workflow, model server, Redis stream, SSE out, rows in Postgres."""

import pytest

from local.model import chunks
from tests.support.helpers import follow, marker, new_session, send, session_rows
from tests.support.scripted_model import Stream, text_reply
from tests.support.sse_client import assembled_text, assert_well_formed, part_types, parts


async def test_text_only_turn_streams_and_persists(http, user, scripted, stack):
    tag = marker()
    scripted.script(tag, text_reply("Hello there, this is a streamed answer."))
    session_id = await new_session(http, user)

    events = await send(http, user, session_id, f"Say hello {tag}")

    assert_well_formed(events)
    assert part_types(events) == ["start", "start-step", "text-start", *["text-delta"] * 7, "text-end",
                                  "finish-step", "finish"]
    assert all(e.id for e in events), "every event carries its Redis entry id"
    assert assembled_text(events) == "Hello there, this is a streamed answer."
    rows = await session_rows(stack.database_url, session_id)
    assert [(r["role"], r["content"]) for r in rows] == [
        ("user", f"Say hello {tag}"), ("assistant", "Hello there, this is a streamed answer.")]

    detail = (await http.get(f"/api/chat/sessions/{session_id}", headers=user.headers)).json()
    assert [m["content"] for m in detail["messages"]] == [r["content"] for r in rows]
    assert detail["active_turn"] is None
    assert detail["title"].startswith("Say hello")


@pytest.mark.parametrize("shape", ["reasoning", "reasoning_content", "reasoning_details"])
async def test_reasoning_then_text(http, user, scripted, stack, shape):
    tag = marker()
    reasoning = [chunks.reasoning("Let me ", shape), chunks.reasoning("think.", shape)]
    if shape == "reasoning_details":
        # Summaries are shown; encrypted entries carry nothing readable and are skipped.
        reasoning.append(chunks.chunk({"reasoning_details": [
            {"type": "reasoning.summary", "summary": " Summary."},
            {"type": "reasoning.encrypted", "data": "c2VjcmV0"}]}))
    scripted.script(tag, Stream([*reasoning, chunks.text("The answer."), chunks.finish(),
                                 chunks.usage(5, 5, 0.0001)]))
    session_id = await new_session(http, user)

    events = await send(http, user, session_id, f"Think first {tag}")

    assert_well_formed(events)
    types = part_types(events)
    assert types.index("reasoning-end") < types.index("text-start")
    expected_reasoning = "Let me think." + (" Summary." if shape == "reasoning_details" else "")
    assert assembled_text(events, "reasoning") == expected_reasoning
    rows = await session_rows(stack.database_url, session_id)
    assert [(r["role"], r["content"]) for r in rows] == [
        ("user", f"Think first {tag}"), ("reasoning", expected_reasoning), ("assistant", "The answer.")]


async def test_tool_call_with_split_arguments_then_second_round(http, user, scripted, stack):
    tag = marker()
    arguments = '{"timezone": "Europe/Berlin"}'
    scripted.script(
        tag,
        Stream([chunks.text("Checking."),
                chunks.tool_call(0, "", call_id="call_abc", name="get_current_time"),
                *[chunks.tool_call(0, arguments[i:i + 5]) for i in range(0, len(arguments), 5)],
                chunks.finish("tool_calls"), chunks.usage(20, 8, 0.0002)]),
        text_reply("It is late in Berlin."),
    )
    session_id = await new_session(http, user)

    events = await send(http, user, session_id, f"What time is it in Berlin? {tag}")

    assert_well_formed(events)
    types = part_types(events)
    assert types[:4] == ["start", "start-step", "text-start", "text-delta"]
    assert types.index("text-end") < types.index("tool-input-start")
    available = next(p for p in parts(events) if p["type"] == "tool-input-available")
    assert available == {"type": "tool-input-available", "toolCallId": "call_abc", "toolName": "get_current_time",
                         "input": {"timezone": "Europe/Berlin"}}
    output = next(p for p in parts(events) if p["type"] == "tool-output-available")
    assert output["toolCallId"] == "call_abc" and output["output"]["timezone"] == "Europe/Berlin"
    assert types.count("start-step") == 2 and types.count("finish-step") == 2
    assert assembled_text(events).endswith("It is late in Berlin.")

    second_request = scripted.requests_for(tag)[-1]
    tool_message = second_request["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == "call_abc"
    assert second_request["messages"][-2]["tool_calls"][0]["function"]["arguments"] == arguments

    rows = await session_rows(stack.database_url, session_id)
    assert [r["role"] for r in rows] == ["user", "assistant", "tool", "assistant"]
    assert rows[1]["tool_calls"][0]["arguments"] == arguments
    assert rows[2]["tool_call_id"] == "call_abc"


async def test_resume_with_last_event_id_yields_exactly_the_missing_events(http, user, scripted):
    tag = marker()
    scripted.script(tag, text_reply(" ".join(f"w{i}" for i in range(40)), delay=0.03))
    session_id = await new_session(http, user)

    first = await send(http, user, session_id, f"Long answer {tag}", limit=10)
    rest = await follow(http, user, session_id, last_event_id=first[-1].id)
    replay = await follow(http, user, session_id)

    assert [e.id for e in first + rest] == [e.id for e in replay]
    assert [e.data for e in first + rest] == [e.data for e in replay]
    assert_well_formed(replay)
    assert assembled_text(replay) == " ".join(f"w{i}" for i in range(40))


async def test_stream_parsed_back_matches_postgres(http, user, scripted, stack):
    tag = marker()
    scripted.script(tag, Stream([chunks.reasoning("Plan."), chunks.text("Part one. "), chunks.text("Part two."),
                                 chunks.finish(), chunks.usage(1, 1, 0.00001)]))
    session_id = await new_session(http, user)

    events = await send(http, user, session_id, f"Go {tag}")

    rows = await session_rows(stack.database_url, session_id)
    by_role = {r["role"]: r["content"] for r in rows}
    assert by_role["assistant"] == assembled_text(events)
    assert by_role["reasoning"] == assembled_text(events, "reasoning")
