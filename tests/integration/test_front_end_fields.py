"""What callers other than a plain chat send, and what they get: the web front end's extra fields
on a send, dry-run sessions, and the AutoPilot graph block's call (`POST .../turns`)."""

import uuid
from pathlib import Path

from database import session_maker
from tests.support.helpers import db_rows, marker, new_session, send, session_rows, slow_text, start_turn
from tests.support.scripted_model import text_reply
from tests.support.scripted_model import tool_call_reply as calls
from tests.support.servers import api_with
from tests.support.sse_client import read_events
from tests.support.users import make_user
from workspace.files import save_file
from workspace.storage import DiskStorage


async def stream(http, user, session_id: str, body: dict) -> list:
    async with http.stream("POST", f"/api/chat/sessions/{session_id}/stream", json=body,
                           headers=user.headers) as response:
        assert response.status_code == 200, await response.aread()
        return await read_events(response)


def last_user_text(request: dict) -> str:
    return [m for m in request["messages"] if m["role"] == "user"][-1]["content"]


async def stored_file(settings, user_id: str, name: str, data: bytes, content_type: str) -> str:
    sessions = session_maker(settings.database_url)
    async with sessions() as db:
        record = await save_file(db, DiskStorage(Path(settings.workspace_dir)), user_id, None, name, data,
                                 max_bytes=1 << 20, content_type=content_type)
    return record.id


async def test_page_context_and_attached_files_reach_the_model_with_the_message(http, user, scripted, settings, stack):
    tag = marker()
    scripted.script(tag, text_reply("Seen."))
    notes = await stored_file(settings, user.id, "notes.md", b"# Plan\nship it", "text/markdown")
    image = await stored_file(settings, user.id, "chart.png", b"\x89PNG....", "image/png")
    session_id = await new_session(http, user)

    await stream(http, user, session_id, {"message": f"look {tag}", "file_ids": [notes, f"workspace://{image}"],
                                          "context": {"url": "https://app.test/build", "content": "Builder page",
                                                      "title": "ignored extra"}})

    sent = last_user_text(scripted.requests_for(tag)[-1])
    assert sent.startswith(f"look {tag}\n\n[Page the user is on: https://app.test/build]\nBuilder page")
    assert f"[Attached file: notes.md (text/markdown, 14 bytes), workspace://{notes}]\n# Plan\nship it" in sent
    assert sent.endswith(f"[Attached file: chart.png (image/png, 8 bytes), workspace://{image}]")
    [row] = [r for r in await session_rows(stack.database_url, session_id) if r["role"] == "user"]
    assert row["content"] == f"look {tag}"  # the transcript keeps what was typed; the context is beside it
    detail = (await http.get(f"/api/chat/sessions/{session_id}", headers=user.headers)).json()
    assert detail["messages"][0]["context"]["page"]["url"] == "https://app.test/build"


async def test_a_file_of_another_user_is_refused_like_a_missing_one(http, user, settings):
    someone_else = make_user(settings)
    theirs = await stored_file(settings, someone_else.id, "secret.txt", b"not yours", "text/plain")
    session_id = await new_session(http, user)
    answers = []
    for ref in (theirs, uuid.uuid4().hex, "../../etc/passwd"):
        response = await http.post(f"/api/chat/sessions/{session_id}/stream", headers=user.headers,
                                   json={"message": "read it", "file_ids": [ref]})
        answers.append((response.status_code, response.json()["error"]["code"]))
    assert answers[:2] == [(422, "unknown_file")] * 2  # another user's and a missing one: the same
    assert answers[2] == (422, "invalid_request")  # not a file id at all: the schema says so
    assert (await http.get(f"/api/chat/sessions/{session_id}", headers=user.headers)).json()["messages"] == []


async def test_a_nudge_is_given_to_the_model_and_marked_in_the_transcript(http, user, scripted, stack):
    tag = marker()
    scripted.script(tag, text_reply("Carrying on."))
    session_id = await new_session(http, user)
    await stream(http, user, session_id, {"message": f"continue {tag}", "is_user_message": False})
    assert last_user_text(scripted.requests_for(tag)[-1]) == f"continue {tag}"
    messages = (await http.get(f"/api/chat/sessions/{session_id}", headers=user.headers)).json()["messages"]
    assert [(m["role"], m["is_user_message"]) for m in messages] == [("user", False), ("assistant", True)]


async def test_mode_and_model_choose_the_model_called(http, user, scripted, settings):
    tag = marker()
    scripted.script(tag, text_reply("one"), text_reply("two"), text_reply("three"))
    session_id = await new_session(http, user)
    for body in ({}, {"mode": "extended_thinking"}, {"model": "advanced"}):
        await stream(http, user, session_id, {"message": f"which {tag}", **body})
    called = [r["model"] for r in scripted.requests_for(tag)]
    assert called == [settings.fast_model, settings.thinking_model, settings.advanced_model]
    assert len(set(called)) == 3
    bad = await http.post(f"/api/chat/sessions/{session_id}/stream", headers=user.headers,
                          json={"message": "x", "model": "gigantic"})
    assert bad.status_code == 422


async def test_a_dry_run_session_does_not_run_tools_that_reach_outside_its_workspace(http, user, scripted, stack,
                                                                                    tmp_path):
    target = tmp_path / "outside.txt"
    tag, sub_tag = marker(), marker()
    scripted.script(tag, calls("change_outside", {"path": str(target)}),
                    calls("run_sub_session", {"prompt": f"also {sub_tag}", "wait_for_result": 30}),
                    text_reply("Simulated."))
    scripted.script(sub_tag, text_reply("sub done"))
    created = await http.post("/api/chat/sessions", json={"dry_run": True}, headers=user.headers)
    assert created.status_code == 201 and created.json()["dry_run"] is True
    session_id = created.json()["id"]

    await send(http, user, session_id, f"go {tag}")

    assert not target.exists()
    [result] = [r for r in await session_rows(stack.database_url, session_id) if r["role"] == "tool"][:1]
    assert '"dry_run": true' in result["content"] and '"ran": false' in result["content"]
    subs = await db_rows(stack.database_url, "SELECT dry_run FROM chat_sessions WHERE parent_session_id = :p",
                         p=session_id)
    assert subs == [{"dry_run": True}]  # a dry run's sub-sessions are dry runs too

    tag = marker()
    scripted.script(tag, calls("change_outside", {"path": str(target)}), text_reply("Done for real."))
    await send(http, user, await new_session(http, user), f"go {tag}")
    assert target.read_text() == "changed"


async def test_a_graph_block_call_gets_the_whole_answer(http, user, scripted):
    tag = marker()
    scripted.script(tag, calls("get_current_time", {"timezone": "UTC"}), text_reply("It is late."))
    session_id = await new_session(http, user)

    response = await http.post(f"/api/chat/sessions/{session_id}/turns", headers=user.headers, json={
        "message": f"what time {tag}", "system_context": "You run inside a graph.", "wait_seconds": 30})

    body = response.json()
    prompt = f"[System Context: You run inside a graph.]\n\nwhat time {tag}"
    assert last_user_text(scripted.requests_for(tag)[0]) == prompt
    assert body["status"] == "completed" and body["response"] == "It is late." and body["session_id"] == session_id
    [call] = body["tool_calls"]
    assert call["tool_name"] == "get_current_time" and call["input"] == {"timezone": "UTC"}
    assert call["success"] is True and "utc" in str(call["output"]).lower()
    assert body["conversation_history"] == [
        {"role": "user", "content": prompt, "tool_calls": None},
        {"role": "assistant", "content": "It is late.", "tool_calls": body["tool_calls"]}]
    assert body["token_usage"] == {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}  # both rounds
    assert body["usage"] is None and body["turn_id"]


async def test_a_graph_block_call_on_a_busy_session_waits_for_the_turn_that_delivers_it(http, user, scripted):
    tag = marker()
    scripted.script(tag, slow_text(40, 0.05), text_reply("Answer to the block."))
    session_id = await new_session(http, user)
    await start_turn(http, user, session_id, f"long {tag}")

    response = await http.post(f"/api/chat/sessions/{session_id}/turns", headers=user.headers,
                               json={"message": "from the block", "wait_seconds": 30})

    body = response.json()
    assert body["queued"] is True and body["pending_buffer_length"] == 1
    assert body["status"] == "completed" and body["response"] == "Answer to the block."
    assert body["conversation_history"][0]["content"] == "from the block"


async def test_recursion_past_the_depth_is_refused_and_the_depth_carries_into_sub_sessions(http, user, scripted,
                                                                                          stack):
    session_id = await new_session(http, user)
    refused = await http.post(f"/api/chat/sessions/{session_id}/turns", headers=user.headers, json={
        "message": "deeper", "recursion_depth": 3, "max_recursion_depth": 3})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "recursion_too_deep"
    assert await session_rows(stack.database_url, session_id) == []

    tag = marker()
    scripted.script(tag, calls("run_sub_session", {"prompt": "one more level", "wait_for_result": 10}),
                    text_reply("Could not delegate."))
    body = (await http.post(f"/api/chat/sessions/{session_id}/turns", headers=user.headers, json={
        "message": f"nested {tag}", "recursion_depth": 3, "max_recursion_depth": 5, "wait_seconds": 30})).json()
    assert body["tool_calls"][0]["success"] is False and "too_deep" in str(body["tool_calls"][0]["output"])


SERVICE_TOKEN = "service-token-for-the-graph-block-0123456789"


async def test_a_service_runs_a_turn_on_behalf_of_a_user_it_names(scripted, settings, stack, worker):
    tag = marker()
    scripted.script(tag, text_reply("For you."), text_reply("Again for you."))
    owner, other = make_user(settings), make_user(settings)
    service = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    async with api_with(settings, service_tokens=[SERVICE_TOKEN]) as http:
        first = await http.post(f"/api/service/users/{owner.id}/turns", headers=service,
                                json={"message": f"block {tag}", "wait_seconds": 30})
        assert first.status_code == 200, first.text
        session_id = first.json()["session_id"]
        again = await http.post(f"/api/service/users/{owner.id}/turns", headers=service,
                                json={"message": "and again", "session_id": session_id, "wait_seconds": 30})
        assert again.json()["response"] == "Again for you."

        mine = await http.get(f"/api/chat/sessions/{session_id}", headers=owner.headers)
        assert mine.status_code == 200 and len(mine.json()["messages"]) == 4
        usage = await db_rows(stack.database_url, "SELECT DISTINCT user_id FROM model_usage WHERE session_id = :s",
                              s=session_id)
        assert usage == [{"user_id": owner.id}]

        someone_elses = await http.post(f"/api/service/users/{other.id}/turns", headers=service,
                                        json={"message": "x", "session_id": session_id})
        assert someone_elses.status_code == 404
        with_a_jwt = await http.post(f"/api/service/users/{owner.id}/turns", headers=owner.headers,
                                     json={"message": "x"})
        assert with_a_jwt.status_code == 401
        token_on_user_route = await http.get(f"/api/chat/sessions/{session_id}", headers=service)
        assert token_on_user_route.status_code == 401
        bad_user = await http.post("/api/service/users/..%2F..%2Fx/turns", headers=service, json={"message": "x"})
        assert bad_user.status_code in (404, 422)
