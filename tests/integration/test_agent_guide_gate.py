"""The guide gate (seed notes §7, the seed's agent_guide_gate_test.py ported): the four agent-JSON tools
refuse until an earlier assistant message of the session called get_agent_building_guide, in either
call shape and whatever its result; never needed again; builder-bound sessions always pass. Run as
the tool activity runs them, on a session whose messages are in PostgreSQL."""

import itertools
import json

import pytest
from sqlalchemy import insert

from models.agent_graph import GraphContent
from models.db import ChatMessage, utcnow
from tests.support.tool_harness import ToolHarness
from tools.agent_guide import GATED_TOOLS

GUIDE = "get_agent_building_guide"
REFUSAL = ("prerequisite_missing: Call get_agent_building_guide first, then retry {tool}. The guide documents required "
           "block ids, input/output schemas, link semantics, and AgentExecutorBlock / MCPToolBlock usage — generating "
           "agent JSON without it produces schema mismatches.")
# Arguments each gated tool accepts, so a call the gate lets through runs (and fails, if at all, on its own).
ARGUMENTS = {"create_agent": {"name": "Gate test"}, "edit_agent": {"agent_id": "", "name": "x"},
             "validate_agent_graph": {"nodes": [], "links": []}, "fix_agent_graph": {"nodes": [], "links": []}}
_sequence = itertools.count(1)


@pytest.fixture
def harness(settings) -> ToolHarness:
    return ToolHarness(settings)


async def session_with(harness: ToolHarness, *messages: dict) -> tuple[str, str]:
    """A session holding these messages (role, content, tool_calls as stored), in order."""
    session_id, user_id = await harness.new_session()
    async with harness.sessions.begin() as db:
        for message in messages:
            await db.execute(insert(ChatMessage).values(
                session_id=session_id, sequence=next(_sequence), role=message["role"],
                content=message.get("content", ""), tool_calls=message.get("tool_calls"), turn_id="turn-0",
                idempotency_key=f"seed-{next(_sequence)}", created_at=utcnow()))
    return session_id, user_id


def assistant(*names: str, shape: str = "flat") -> dict:
    calls = [{"function": {"name": n}} if shape == "openai" else {"id": f"c-{n}", "name": n, "arguments": "{}"}
             for n in names]
    return {"role": "assistant", "content": "", "tool_calls": calls}


async def call(harness: ToolHarness, session: tuple[str, str], tool: str = "create_agent", **request) -> str:
    session_id, user_id = session
    result = await harness.run(harness.request(session_id, user_id, tool, ARGUMENTS[tool], **request))
    return result.error or "ran"


def gated(error: str) -> bool:
    return error.startswith("prerequisite_missing")


async def test_no_messages_gate_fires(harness):
    error = await call(harness, await session_with(harness))
    assert error == REFUSAL.format(tool="create_agent")
    assert "get_agent_building_guide" in error and "create_agent" in error


async def test_user_message_only_gate_fires(harness):
    assert gated(await call(harness, await session_with(harness, {"role": "user", "content": "build me an agent"})))


async def test_assistant_without_tool_calls_gate_fires(harness):
    session = await session_with(harness, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"})
    assert gated(await call(harness, session))


async def test_unrelated_tool_call_gate_fires(harness):
    assert gated(await call(harness, await session_with(harness, assistant("find_block"))))


async def test_guide_called_via_openai_shape_gate_passes(harness):
    assert await call(harness, await session_with(harness, assistant(GUIDE, shape="openai"))) == "ran"


async def test_guide_called_via_flat_shape_gate_passes(harness):
    assert await call(harness, await session_with(harness, assistant(GUIDE))) == "ran"


async def test_guide_earlier_in_history_still_passes(harness):
    session = await session_with(harness, {"role": "user", "content": "hi"}, assistant(GUIDE),
                                 {"role": "tool", "content": "the guide"}, {"role": "user", "content": "go on"},
                                 assistant("find_block"), {"role": "assistant", "content": "done"},
                                 {"role": "user", "content": "now edit it"})
    error = await call(harness, session, "edit_agent")
    assert not gated(error) and error.startswith("missing_agent_id")  # past the gate: the tool's own check


@pytest.mark.parametrize("tool", GATED_TOOLS)
async def test_tool_name_surfaced_in_error(harness, tool):
    assert await call(harness, await session_with(harness), tool) == REFUSAL.format(tool=tool)


async def test_builder_bound_session_bypasses_gate(harness):
    session = await session_with(harness)
    graph = await harness.graphs.create(session[1], GraphContent(name="Bound"))
    assert await call(harness, session, "edit_agent", builder_graph_id=graph.id) == "ran"  # the bound graph, edited
    assert (await harness.graphs.get(session[1], graph.id)).version == 2


@pytest.mark.parametrize("tool", GATED_TOOLS)
async def test_builder_bound_session_bypasses_gate_for_all_tools(harness, tool):
    assert not gated(await call(harness, await session_with(harness), tool, builder_graph_id="bound-graph"))


async def test_a_failed_guide_call_counts(harness):
    session = await session_with(harness, assistant(GUIDE),
                                 {"role": "tool", "content": json.dumps({"error": "guide_unavailable: down"})})
    assert await call(harness, session) == "ran"


async def test_a_guide_call_in_the_same_message_does_not_count(harness):
    """The guide and the gated tool called in one round: the guide was not read before the call."""
    session = await session_with(harness, {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c-guide", "name": GUIDE, "arguments": "{}"}, {"id": "c-create", "name": "create_agent",
                                                             "arguments": "{}"}]})
    assert gated(await call(harness, session, call_id="c-create", turn_id="turn-0"))


async def test_the_gate_comes_before_the_arguments(harness):
    session_id, user_id = await session_with(harness)
    result = await harness.run(harness.request(session_id, user_id, "fix_agent_graph", {"nodes": "not a list"}))
    assert gated(result.error)



async def test_a_text_answer_does_not_break_the_success_prerequisite(harness):
    """A message without tool calls stores JSON null in `tool_calls` (not SQL NULL): the check reads past it."""
    from activities.store import insert_rows
    from models.turn import NewMessageRow, ToolCall

    session_id, user_id = await harness.new_session()
    async with harness.sessions.begin() as db:
        await insert_rows(db, session_id, "turn-0", [
            NewMessageRow(key="a0", role="assistant", content="hello"),
            NewMessageRow(key="a1", role="assistant", tool_calls=[ToolCall(id="c1", name="list_workspace_files")]),
            NewMessageRow(key="t1", role="tool", tool_call_id="c1", content=json.dumps({"files": []}))])
    result = await harness.run(harness.request(session_id, user_id, "gated", {}))
    assert result.output == "guarded tool ran"
