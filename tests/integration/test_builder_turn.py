"""Whole turns of the builder's chat through the API, the worker and Temporal, with a scripted model:
the guide and the snapshot reach the model, the bound graph is edited (its version in PostgreSQL moves
by one), and what the model was given besides the conversation is never stored."""

import json

from sqlalchemy import delete

from agent_graphs.guide import load_guide
from database import session_maker
from models.db import AgentGraphRecord
from tests.support.helpers import db_rows, marker, send, session_rows
from tests.support.scripted_model import text_reply, tool_call_reply


async def graph_of(http, user) -> str:
    response = await http.post("/api/graphs", json={"name": "Mailer", "nodes": [
        {"id": "in", "block_id": "text-input", "input_default": {"name": "Text"}}]}, headers=user.headers)
    return response.json()["id"]


async def version(stack, graph_id: str) -> int:
    [row] = await db_rows(stack.database_url, "SELECT version FROM agent_graphs WHERE id = :g", g=graph_id)
    return row["version"]


def latest_user_text(request: dict) -> str:
    return next(m["content"] for m in reversed(request["messages"]) if m["role"] == "user")


def tool_outputs(events) -> list:
    return [e.part for e in events if e.part and e.part["type"] in ("tool-output-available", "tool-output-error")]


async def test_a_builder_turn_edits_the_bound_graph(http, user, scripted, stack):
    graph_id = await graph_of(http, user)
    session_id = (await http.post("/api/chat/sessions", json={"builder_graph_id": graph_id},
                                  headers=user.headers)).json()["id"]
    tag = marker()
    scripted.script(tag, tool_call_reply("edit_agent", {"add_nodes": [{"id": "mail", "block_id": "send-email"}],
                                                        "add_links": [{"source_id": "in", "source_name": "result",
                                                                       "sink_id": "mail", "sink_name": "body"}]}),
                    text_reply("Added a mail node after the input."))
    events = await send(http, user, session_id, f"{tag} add a node that mails the text")

    [output] = tool_outputs(events)
    assert output["type"] == "tool-output-available" and output["output"]["graph_version"] == 2
    assert await version(stack, graph_id) == 2
    first, second = scripted.requests_for(tag)
    system = first["messages"][0]["content"]
    assert system.endswith(f"<building_guide>\n{load_guide()}\n</building_guide>\n</builder_session>")
    offered = {t["function"]["name"] for t in first["tools"]}
    assert "edit_agent" in offered and not offered & {"create_agent", "get_agent_building_guide"}
    assert latest_user_text(first).startswith(
        f'<builder_context>\n<graph id="{graph_id}" name="Mailer" version="1" node_count="1" edge_count="0"/>\n'
        "<nodes>\n- in: Text (text-input)\n</nodes>\n<links>\n</links>\n</builder_context>\n\n"
        f"{tag} add a node that mails the text")
    # Read afresh for the next round: the model sees the version its edit saved.
    assert 'version="2" node_count="2" edge_count="1"' in latest_user_text(second)
    assert "- Text.result -> send-email.body" in latest_user_text(second)

    stored = json.dumps(await session_rows(stack.database_url, session_id))
    assert "builder_context" not in stored and "builder_session" not in stored
    messages = (await http.get(f"/api/chat/sessions/{session_id}", headers=user.headers)).json()["messages"]
    assert messages[0]["content"] == f"{tag} add a node that mails the text"


async def test_outside_the_builder_the_guide_comes_first(http, user, scripted, stack):
    """An ordinary session: the edit is refused until the model reads the guide, then goes through."""
    graph_id = await graph_of(http, user)
    session_id = (await http.post("/api/chat/sessions", json={}, headers=user.headers)).json()["id"]
    tag = marker()
    edit = {"agent_id": graph_id, "version": 1, "name": "Mailer v2"}
    scripted.script(tag, tool_call_reply("edit_agent", edit), tool_call_reply("get_agent_building_guide", {}),
                    tool_call_reply("edit_agent", edit), text_reply("Renamed it."))
    events = await send(http, user, session_id, f"{tag} rename my agent")

    refused, guide, saved = tool_outputs(events)
    assert refused["errorText"].startswith("prerequisite_missing: Call get_agent_building_guide first")
    assert guide["output"].startswith("# Building agent graphs")
    assert saved["output"]["graph_version"] == 2 and await version(stack, graph_id) == 2
    requests = scripted.requests_for(tag)
    assert all("<building_guide>" not in r["messages"][0]["content"] for r in requests)
    assert all(not latest_user_text(r).startswith("<builder_context>") for r in requests)


async def test_a_bound_graph_that_cannot_be_read_is_said_so(http, user, scripted, stack):
    graph_id = await graph_of(http, user)
    session_id = (await http.post("/api/chat/sessions", json={"builder_graph_id": graph_id},
                                  headers=user.headers)).json()["id"]
    async with session_maker(stack.database_url).begin() as db:
        await db.execute(delete(AgentGraphRecord).where(AgentGraphRecord.id == graph_id))
    tag = marker()
    scripted.script(tag, text_reply("I cannot see the graph."))
    await send(http, user, session_id, f"{tag} what is in my agent?")
    assert latest_user_text(scripted.requests_for(tag)[0]).startswith(
        "<builder_context>\n<status>fetch_failed</status>\n</builder_context>\n\n")


async def test_a_sub_session_of_the_builder_chat_works_on_the_same_graph(http, user, scripted, stack):
    graph_id, other_graph = await graph_of(http, user), await graph_of(http, user)
    session_id = (await http.post("/api/chat/sessions", json={"builder_graph_id": graph_id},
                                  headers=user.headers)).json()["id"]
    parent, sub = marker(), marker()
    scripted.script(parent, tool_call_reply("run_sub_session", {"prompt": f"{sub} rename it", "wait_for_result": 30}),
                    text_reply("Delegated."))
    scripted.script(sub, tool_call_reply("edit_agent", {"agent_id": other_graph, "name": "Not this one"}),
                    text_reply("Refused."))
    events = await send(http, user, session_id, f"{parent} delegate the rename")

    [delegated] = tool_outputs(events)
    sub_id = delegated["output"]["sub_autopilot_session_id"]
    assert (await http.get(f"/api/chat/sessions/{sub_id}", headers=user.headers)).json()["builder_graph_id"] == graph_id
    first = scripted.requests_for(sub)[0]
    assert latest_user_text(first).startswith(f'<builder_context>\n<graph id="{graph_id}"')
    assert not {t["function"]["name"] for t in first["tools"]} & {"create_agent", "get_agent_building_guide"}
    [_, _, refused, _] = await session_rows(stack.database_url, sub_id)
    assert json.loads(refused["content"])["error"].startswith("builder_session_graph_mismatch")
    assert await version(stack, other_graph) == 1
