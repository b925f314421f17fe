"""A person approves risky tool calls before they run: the turn waits in the workflow (no worker
held), the stream carries the request, the decision comes through the API. Real stack, scripted model."""

import asyncio
import json
import uuid

from local.model import chunks
from tests.support.helpers import db_rows, eventually, follow, marker, queue, send, session_rows, stop
from tests.support.processes import start_worker
from tests.support.scripted_model import Stream, text_reply
from tests.support.scripted_model import tool_call_reply as calls
from tests.support.servers import api_with
from tests.support.sse_client import assert_well_formed, parts
from tests.support.users import make_user

GUARDED = "get_current_time"


async def guarded_session(http, user, tools=(GUARDED,)) -> str:
    response = await http.post("/api/chat/sessions", json={"require_approval": list(tools)}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def waiting_approvals(http, user, session_id: str, count: int = 1) -> list[dict]:
    async def state():
        return (await http.get(f"/api/chat/sessions/{session_id}", headers=user.headers)).json()["active_turn"]
    turn = await eventually(state, lambda t: t is not None and t["status"] == "awaiting_approval"
                            and len(t["awaiting_approval"]) == count)
    return turn["awaiting_approval"]


async def decide(http, user, session_id: str, approval_id: str, approved: bool, reason=None):
    body = {"approved": approved, **({"reason": reason} if reason else {})}
    return await http.post(f"/api/chat/sessions/{session_id}/tool-approvals/{approval_id}", json=body,
                           headers=user.headers)


def tool_messages(request: dict) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


async def test_an_approved_call_runs_once_on_the_same_stream(http, user, scripted, stack):
    tag = marker()
    scripted.script(tag, calls(GUARDED, {"timezone": "UTC"}, call_id="call_ok"), text_reply("Ran it."))
    session_id = await guarded_session(http, user)
    streaming = asyncio.create_task(send(http, user, session_id, f"time {tag}"))

    [waiting] = await waiting_approvals(http, user, session_id)
    assert waiting == {"approval_id": "approval_call_ok", "tool_call_id": "call_ok", "tool_name": GUARDED,
                       "input": {"timezone": "UTC"}}
    assert len(scripted.requests_for(tag)) == 1  # nothing ran while it waited
    first = await decide(http, user, session_id, "approval_call_ok", True)
    assert first.status_code == 200 and first.json() == {"approval_id": "approval_call_ok", "status": "approved",
                                                         "already": False}
    events = await asyncio.wait_for(streaming, 30)

    assert_well_formed(events)
    kinds = [p["type"] for p in parts(events)]
    request_at = kinds.index("data-tool-approval-request")
    assert kinds.index("tool-input-available") < request_at < kinds.index("tool-output-available")
    assert "utc" in tool_messages(scripted.requests_for(tag)[-1])[0].lower()
    again = await decide(http, user, session_id, "approval_call_ok", True)
    assert again.status_code == 200 and again.json()["already"] is True
    denied_after = await decide(http, user, session_id, "approval_call_ok", False)
    assert denied_after.status_code == 409 and denied_after.json()["error"]["code"] == "already_decided"
    tools = [r for r in await session_rows(stack.database_url, session_id) if r["role"] == "tool"]
    assert len(tools) == 1


async def test_a_denied_call_is_not_run_and_the_model_reads_the_reason(http, user, scripted):
    tag = marker()
    scripted.script(tag, calls(GUARDED, {}, call_id="call_no"), text_reply("Understood."))
    session_id = await guarded_session(http, user)
    streaming = asyncio.create_task(send(http, user, session_id, f"time {tag}"))
    await waiting_approvals(http, user, session_id)

    answer = await decide(http, user, session_id, "approval_call_no", False, reason="not on a Sunday")

    assert answer.status_code == 200 and answer.json()["status"] == "denied"
    events = await asyncio.wait_for(streaming, 30)
    [result] = tool_messages(scripted.requests_for(tag)[-1])
    assert "approval_denied" in result and "not on a Sunday" in result
    outputs = [p for p in parts(events) if p["type"] == "tool-output-error"]
    assert outputs and outputs[0]["toolCallId"] == "call_no"


async def test_two_calls_of_a_round_are_approved_one_by_one_in_either_order(http, user, scripted, stack):
    tag = marker()
    two_calls = Stream([chunks.tool_call(0, "", call_id="call_a", name=GUARDED), chunks.tool_call(0, "{}"),
                        chunks.tool_call(1, "", call_id="call_b", name=GUARDED), chunks.tool_call(1, "{}"),
                        chunks.finish("tool_calls"), chunks.usage(1, 1, 0.0001)])
    scripted.script(tag, two_calls, text_reply("Both."))
    session_id = await guarded_session(http, user)
    streaming = asyncio.create_task(send(http, user, session_id, f"twice {tag}"))
    await waiting_approvals(http, user, session_id, count=2)

    assert (await decide(http, user, session_id, "approval_call_b", True)).status_code == 200
    [still] = await waiting_approvals(http, user, session_id, count=1)
    assert still["tool_call_id"] == "call_a"
    assert (await decide(http, user, session_id, "approval_call_a", True)).status_code == 200

    await asyncio.wait_for(streaming, 30)
    results = await db_rows(stack.database_url, "SELECT tool_call_id FROM chat_messages WHERE session_id = :s AND "
                                                "role = 'tool' ORDER BY sequence", s=session_id)
    assert sorted(r["tool_call_id"] for r in results) == ["call_a", "call_b"]


async def test_stop_while_waiting_closes_the_call(http, user, scripted, stack):
    tag = marker()
    scripted.script(tag, calls(GUARDED, {}, call_id="call_stop"), text_reply("Never."))
    session_id = await guarded_session(http, user)
    streaming = asyncio.create_task(send(http, user, session_id, f"stop {tag}"))
    await waiting_approvals(http, user, session_id)

    assert await stop(http, user, session_id) == {"stopped": True}

    events = await asyncio.wait_for(streaming, 30)
    assert [p["type"] for p in parts(events)][-2:] == ["abort", "finish"]
    rows = await session_rows(stack.database_url, session_id)
    assert [r["content"] for r in rows if r["role"] == "tool"] == ['{"error": "stopped by user"}']
    late = await decide(http, user, session_id, "approval_call_stop", True)
    assert late.status_code == 409 and late.json()["error"]["code"] == "approval_closed"
    assert "stopped" in late.json()["error"]["message"]


async def test_a_follow_up_while_waiting_is_queued_and_delivered_after_the_round(http, user, scripted, stack):
    tag = marker()
    scripted.script(tag, calls(GUARDED, {}, call_id="call_fu"), text_reply("Answered both."))
    session_id = await guarded_session(http, user)
    streaming = asyncio.create_task(send(http, user, session_id, f"first {tag}"))
    await waiting_approvals(http, user, session_id)

    queued = await queue(http, user, session_id, "and one more thing")
    assert queued.status_code == 202, queued.text
    assert (await decide(http, user, session_id, "approval_call_fu", True)).status_code == 200
    await asyncio.wait_for(streaming, 30)

    roles = [(r["role"], r["content"]) for r in await session_rows(stack.database_url, session_id)]
    assert [role for role, _ in roles] == ["user", "assistant", "tool", "user", "assistant"]
    assert roles[3][1] == "and one more thing"


async def test_an_unanswered_call_counts_as_declined_after_the_timeout(scripted, settings, worker):
    tag = marker()
    scripted.script(tag, calls(GUARDED, {}, call_id="call_late"), text_reply("Nobody answered."))
    async with api_with(settings, tool_approval_timeout_seconds=1.0) as http:
        user = make_user(settings)
        session_id = await guarded_session(http, user)
        await send(http, user, session_id, f"wait {tag}")
        [result] = tool_messages(scripted.requests_for(tag)[-1])
        assert "approval_timed_out" in result
        late = await decide(http, user, session_id, "approval_call_late", True)
        assert late.status_code == 409 and "in time" in late.json()["error"]["message"]


async def test_approvals_are_the_owners_alone(http, user, scripted, settings):
    tag = marker()
    scripted.script(tag, calls(GUARDED, {}, call_id="call_mine"), text_reply("ok"))
    session_id = await guarded_session(http, user)
    streaming = asyncio.create_task(send(http, user, session_id, f"mine {tag}"))
    await waiting_approvals(http, user, session_id)

    stranger = make_user(settings)
    foreign = await decide(http, stranger, session_id, "approval_call_mine", True)
    missing = await decide(http, user, session_id, f"approval_{uuid.uuid4().hex}", True)
    unknown_session = await decide(http, user, str(uuid.uuid4()), "approval_call_mine", True)
    assert foreign.status_code == missing.status_code == unknown_session.status_code == 404
    assert foreign.json() == unknown_session.json()
    malformed = await decide(http, user, session_id, "call_mine;drop", True)
    assert malformed.status_code in (404, 422)

    assert (await decide(http, user, session_id, "approval_call_mine", True)).status_code == 200
    await asyncio.wait_for(streaming, 30)


async def test_the_stream_speaks_each_clients_approval_protocol(http, user, scripted):
    tag = marker()
    scripted.script(tag, calls(GUARDED, {}, call_id="call_proto"), text_reply("ok"))
    session_id = await guarded_session(http, user)
    streaming = asyncio.create_task(send(http, user, session_id, f"proto {tag}"))
    await waiting_approvals(http, user, session_id)
    await decide(http, user, session_id, "approval_call_proto", False)
    await asyncio.wait_for(streaming, 30)

    as_stored = parts(await follow(http, user, session_id))
    async with http.stream("GET", f"/api/chat/sessions/{session_id}/stream",
                           headers={**user.headers, "x-ai-sdk-version": "6"}) as response:
        native = [json.loads(line[6:]) for line in (await response.aread()).decode().splitlines()
                  if line.startswith("data: {")]
    assert {"type": "data-tool-approval-request", "data": {
        "approvalId": "approval_call_proto", "toolCallId": "call_proto", "toolName": GUARDED, "input": {}}} in as_stored
    assert {"type": "tool-approval-request", "approvalId": "approval_call_proto", "toolCallId": "call_proto"} in native
    assert {"type": "tool-output-denied", "toolCallId": "call_proto"} in native
    assert not any(p["type"].startswith("data-tool-approval") for p in native)


async def test_a_worker_restart_while_waiting_resumes_and_runs_the_tool_once(settings, scripted, stack):
    isolated = settings.model_copy(update={"temporal_task_queue": f"approval-restart-{uuid.uuid4().hex[:8]}"})
    tag = marker()
    scripted.script(tag, calls(GUARDED, {}, call_id="call_restart"), text_reply("Survived."))
    first = start_worker(isolated, stack.log_dir / "approval-worker-a.log")
    second = None
    try:
        async with api_with(isolated) as http:
            user = make_user(settings)
            session_id = await guarded_session(http, user)
            streaming = asyncio.create_task(send(http, user, session_id, f"restart {tag}"))
            await waiting_approvals(http, user, session_id)
            first.kill()
            second = start_worker(isolated, stack.log_dir / "approval-worker-b.log")
            assert (await decide(http, user, session_id, "approval_call_restart", True)).status_code == 200
            events = await asyncio.wait_for(streaming, 60)
        assert [p["type"] for p in parts(events)][-1] == "finish"
        rows = await session_rows(stack.database_url, session_id)
        assert [r["role"] for r in rows] == ["user", "assistant", "tool", "assistant"]
        assert len(scripted.requests_for(tag)) == 2
    finally:
        first.kill()
        if second:
            second.stop()
