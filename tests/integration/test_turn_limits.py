"""What bounds a turn from inside: spend before every round, sub-sessions per turn, running turns
per user; what Stop and Delete reach; sends that are safe to retry. All on the real stack."""

import asyncio
import os
import uuid
from pathlib import Path

from redis.asyncio import Redis

from models.turn import STOP_MARKER
from tests.support.helpers import (
    db_rows,
    eventually,
    marker,
    new_session,
    queue,
    send,
    session_rows,
    slow_text,
    start_turn,
    stop,
)
from tests.support.scripted_model import text_reply
from tests.support.scripted_model import tool_call_reply as calls
from tests.support.servers import api_with
from tests.support.sse_client import assembled_text, parts, read_events
from tests.support.users import make_user
from workflows import turn_client


def daily_limit_dollars(settings) -> float:
    return settings.daily_cost_limit_microdollars / 1_000_000


async def running_sessions(temporal_client, user_id: str) -> set[str]:
    found = set()
    async for execution in temporal_client.list_workflows(
            f"CopilotUserId = '{user_id}' AND ExecutionStatus = 'Running'"):
        found.add(execution.id.removeprefix("copilot-turn/"))
    return found


async def sub_sessions_of(database_url: str, user_id: str) -> list[dict]:
    return await db_rows(database_url, "SELECT id, parent_session_id FROM chat_sessions WHERE user_id = :u AND "
                                       "title LIKE 'Sub-session:%' ORDER BY created_at", u=user_id)


async def test_a_turn_that_crosses_the_spend_limit_ends_before_its_next_round(http, user, scripted, stack, settings):
    tag = marker()
    scripted.script(tag, calls("get_current_time", {}, cost=daily_limit_dollars(settings)),
                    text_reply("This round must not run."))
    session_id = await new_session(http, user)

    events = await send(http, user, session_id, f"expensive {tag}")

    assert len(scripted.requests_for(tag)) == 1
    assert "daily usage limit is reached" in assembled_text(events) and part_kinds(events)[-1] == "finish"
    rows = await session_rows(stack.database_url, session_id)
    assert [r["role"] for r in rows] == ["user", "assistant", "tool", "assistant"]
    assert "daily usage limit" in rows[-1]["content"]
    refused = await queue(http, user, session_id, f"more {tag}")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "usage_limit"


async def test_a_sub_session_started_past_the_limit_runs_no_round(http, user, scripted, stack, settings):
    parent_tag, sub_tag = marker(), marker()
    scripted.script(parent_tag, calls("run_sub_session", {"prompt": f"go {sub_tag}", "wait_for_result": 30},
                                      cost=daily_limit_dollars(settings)),
                    text_reply("The parent must not get here."))
    scripted.script(sub_tag, text_reply("The sub must not get here."))
    session_id = await new_session(http, user)

    await send(http, user, session_id, f"delegate {parent_tag}")

    assert scripted.requests_for(sub_tag) == [] and len(scripted.requests_for(parent_tag)) == 1
    [sub] = await sub_sessions_of(stack.database_url, user.id)
    sub_rows = await session_rows(stack.database_url, sub["id"])
    assert [r["role"] for r in sub_rows] == ["user", "assistant"] and "usage limit" in sub_rows[1]["content"]


def part_kinds(events) -> list[str]:
    return [p["type"] for p in parts(events)]


async def test_stopping_the_root_stops_the_whole_sub_session_tree(http, user, scripted, stack, temporal_client):
    root, middle, leaf = marker(), marker(), marker()
    scripted.script(root, calls("run_sub_session", {"prompt": f"middle {middle}", "wait_for_result": 120}),
                    text_reply("root done"))
    scripted.script(middle, calls("run_sub_session", {"prompt": f"leaf {leaf}", "wait_for_result": 120}),
                    text_reply("middle done"))
    scripted.script(leaf, slow_text(600, 0.05))
    session_id = await new_session(http, user)
    await start_turn(http, user, session_id, f"root {root}")
    await eventually(lambda: running_sessions(temporal_client, user.id), lambda running: len(running) == 3)
    await eventually(lambda: asyncio.sleep(0, result=scripted.requests_for(leaf)), bool)  # the leaf is streaming

    assert await stop(http, user, session_id) == {"stopped": True}

    await eventually(lambda: running_sessions(temporal_client, user.id), lambda running: not running, timeout=20)
    subs = await sub_sessions_of(stack.database_url, user.id)
    assert len(subs) == 2
    for sub in subs:  # each one stopped as a Stop does: its record ends with the stop marker
        rows = await session_rows(stack.database_url, sub["id"])
        assert rows[-1]["role"] == "system" and rows[-1]["content"] == STOP_MARKER
    assert len(scripted.requests_for(leaf)) == 1  # nothing was retried


async def test_deleting_a_session_removes_everything_of_it_and_stops_its_sub_sessions(
        http, user, scripted, stack, settings, temporal_client):
    tag, sub_tag = marker(), marker()
    scripted.script(tag, calls("write_workspace_file", {"name": "notes.txt", "content": "kept"}),
                    calls("run_sub_session", {"prompt": f"background {sub_tag}", "wait_for_result": 0}),
                    text_reply("Started."))
    scripted.script(sub_tag, slow_text(600, 0.05))
    session_id = await new_session(http, user)
    await send(http, user, session_id, f"work {tag}")
    [sub] = await sub_sessions_of(stack.database_url, user.id)
    await eventually(lambda: running_sessions(temporal_client, user.id), lambda running: running == {sub["id"]})
    folder = Path(settings.workspace_dir) / "sessions" / session_id
    assert (folder / "notes.txt").is_file()
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    assert [key async for key in redis.scan_iter(match=f"copilot:stream:{session_id}:*")]

    deleted = await http.delete(f"/api/chat/sessions/{session_id}", headers=user.headers)

    assert deleted.status_code == 204
    assert not os.path.exists(folder)
    assert [key async for key in redis.scan_iter(match=f"copilot:stream:{session_id}:*")] == []
    assert await redis.get(f"copilot:session:{session_id}:latest-turn") is None
    assert await db_rows(stack.database_url, "SELECT id FROM chat_messages WHERE session_id = :s", s=session_id) == []
    assert await db_rows(stack.database_url, "SELECT id FROM workspace_files WHERE session_id = :s", s=session_id) == []
    await eventually(lambda: running_sessions(temporal_client, user.id), lambda running: not running)
    kept = await db_rows(stack.database_url, "SELECT parent_session_id FROM chat_sessions WHERE id = :s", s=sub["id"])
    assert kept == [{"parent_session_id": None}]  # the sub-session stays, a session of its own, stopped
    assert (await session_rows(stack.database_url, sub["id"]))[-1]["content"] == STOP_MARKER
    assert (await http.get(f"/api/chat/sessions/{session_id}", headers=user.headers)).status_code == 404
    await redis.aclose()


async def test_a_turn_starts_at_most_the_configured_number_of_sub_sessions(scripted, stack, settings, worker):
    tag = marker()
    first, second = (calls("run_sub_session", {"prompt": f"job {n} {marker()}", "wait_for_result": 0})
                     for n in range(2))
    scripted.script(tag, first, second, text_reply("Done."))
    async with api_with(settings, max_sub_sessions_per_turn=1) as http:
        user = make_user(settings)
        session_id = await new_session(http, user)
        events = await send(http, user, session_id, f"fan out {tag}")
    outputs = [p for p in parts(events) if p["type"] in ("tool-output-available", "tool-output-error")]
    assert outputs[0]["type"] == "tool-output-available"
    assert "too_many_sub_sessions" in str(outputs[1])
    assert len(await sub_sessions_of(stack.database_url, user.id)) == 1


async def test_a_user_runs_at_most_the_configured_number_of_turns_at_once(scripted, settings, temporal_client,
                                                                          worker):
    parent, sub = marker(), marker()
    scripted.script(parent, calls("run_sub_session", {"prompt": f"slow {sub}", "wait_for_result": 0}),
                    text_reply("Started."))
    scripted.script(sub, slow_text(600, 0.05))
    busy = marker()
    scripted.script(busy, slow_text(600, 0.05), slow_text(600, 0.05))  # the second for the follow-up
    async with api_with(settings, max_running_turns_per_user=2) as http:
        user = make_user(settings)
        with_sub, second, third = [await new_session(http, user) for _ in range(3)]
        await send(http, user, with_sub, f"delegate {parent}")  # its sub-session keeps running
        await start_turn(http, user, second, f"busy {busy}")
        await eventually(lambda: turn_client.running_turns(temporal_client, user.id), lambda n: n == 2)

        refused = await queue(http, user, third, "one more")
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "too_many_running_turns"
        assert refused.headers["retry-after"]
        follow_up = await queue(http, user, second, "a follow-up joins a running turn")
        assert follow_up.status_code == 202

        await stop(http, user, second)  # the follow-up queued before the stop opens the next turn at once
        await eventually(lambda: turn_client.running_turns(temporal_client, user.id), lambda n: n == 2)
        await eventually(lambda: stop(http, user, second), lambda answer: answer == {"stopped": False})
        await eventually(lambda: turn_client.running_turns(temporal_client, user.id), lambda n: n == 1)
        quick = marker()
        scripted.script(quick, text_reply("Now there is room."))
        assert assembled_text(await send(http, user, third, f"room {quick}")) == "Now there is room."
        for session_id in (with_sub, second, third):
            await http.delete(f"/api/chat/sessions/{session_id}", headers=user.headers)


async def test_a_send_repeated_with_its_idempotency_key_is_stored_and_sent_once(http, user, scripted, stack):
    tag = marker()
    scripted.script(tag, text_reply("Answered once."))
    session_id = await new_session(http, user)
    key = {"Idempotency-Key": f"send-{uuid.uuid4()}"}
    body = {"message": f"once {tag}", "wait_seconds": 30}

    first = await http.post(f"/api/chat/sessions/{session_id}/turns", json=body, headers={**user.headers, **key})
    again = await http.post(f"/api/chat/sessions/{session_id}/turns", json=body, headers={**user.headers, **key})

    assert first.status_code == again.status_code == 200
    assert first.json()["response"] == again.json()["response"] == "Answered once."
    assert len(scripted.requests_for(tag)) == 1
    rows = await session_rows(stack.database_url, session_id)
    assert [r["role"] for r in rows] == ["user", "assistant"]
    reused = await http.post(f"/api/chat/sessions/{session_id}/turns", json={"message": "something else"},
                             headers={**user.headers, **key})
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"
    assert len(await session_rows(stack.database_url, session_id)) == 2


async def test_the_streaming_route_answers_a_repeat_with_the_first_stream(http, user, scripted, stack):
    tag = marker()
    scripted.script(tag, text_reply("Streamed once."))
    session_id = await new_session(http, user)
    stream_key = {"Idempotency-Key": f"stream-{uuid.uuid4()}"}
    texts = []
    for _ in range(2):
        async with http.stream("POST", f"/api/chat/sessions/{session_id}/stream", json={"message": f"s {tag}"},
                               headers={**user.headers, **stream_key}) as response:
            assert response.status_code == 200
            texts.append(assembled_text(await read_events(response)))
    assert texts == ["Streamed once.", "Streamed once."] and len(scripted.requests_for(tag)) == 1
    assert [r["role"] for r in await session_rows(stack.database_url, session_id)] == ["user", "assistant"]


async def test_two_copies_of_one_send_at_once_send_it_once(http, user, scripted, stack):
    tag = marker()
    scripted.script(tag, text_reply("Once.", first_delay=0.5))
    session_id = await new_session(http, user)
    headers = {**user.headers, "Idempotency-Key": f"race-{uuid.uuid4()}"}
    body = {"message": f"race {tag}", "wait_seconds": 30}

    answers = await asyncio.gather(*(http.post(f"/api/chat/sessions/{session_id}/turns", json=body, headers=headers)
                                     for _ in range(2)))

    codes = sorted(a.status_code for a in answers)
    assert codes in ([200, 200], [200, 409]), [a.text for a in answers]
    if codes == [200, 409]:
        conflict = next(a for a in answers if a.status_code == 409)
        assert conflict.json()["error"]["code"] == "idempotency_key_in_use"
    assert len(scripted.requests_for(tag)) == 1
    assert [r["role"] for r in await session_rows(stack.database_url, session_id)] == ["user", "assistant"]


async def test_a_malformed_idempotency_key_is_a_422(http, user):
    session_id = await new_session(http, user)
    response = await http.post(f"/api/chat/sessions/{session_id}/turns", json={"message": "hi"},
                               headers={**user.headers, "Idempotency-Key": "x" * 256})
    assert response.status_code == 422
    assert "Idempotency-Key" in response.text or "idempotency-key" in response.text.lower()


async def test_an_auto_continued_turn_still_counts_as_running(scripted, settings, temporal_client, worker):
    tag = marker()
    scripted.script(tag, slow_text(20, 0.05), slow_text(600, 0.05))
    async with api_with(settings, max_running_turns_per_user=1) as http:
        user = make_user(settings)
        busy, other = await new_session(http, user), await new_session(http, user)
        await start_turn(http, user, busy, f"first {tag}")
        assert (await queue(http, user, busy, "and then this")).status_code == 202

        async def runs():
            return [w.status.name async for w in temporal_client.list_workflows(f"WorkflowId = 'copilot-turn/{busy}'")]
        await eventually(runs, lambda statuses: len(statuses) == 2 and "RUNNING" in statuses)
        await eventually(lambda: turn_client.running_turns(temporal_client, user.id), lambda n: n == 1)

        refused = await queue(http, user, other, "one more")
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_running_turns"
        await stop(http, user, busy)
