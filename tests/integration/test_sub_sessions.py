"""Sub-sessions as child workflows, driven by a scripted model through the real API."""

import json
import time
import uuid

import httpx
from temporalio.testing import ActivityEnvironment

from activities.sub_sessions import SubSessionActivities
from api.main import create_app
from database import session_maker
from local.stack.process import free_port
from models.turn import IncomingMessage, QueueInSessionRequest
from tests.support.extra_tools import TEST_TOOLS
from tests.support.helpers import db_rows, eventually, follow, marker, new_session, send, session_rows
from tests.support.scripted_model import text_reply
from tests.support.scripted_model import tool_call_reply as calls
from tests.support.servers import serve, shutdown
from tests.support.sse_client import parts
from tests.support.tool_harness import ToolHarness
from tests.support.users import make_user
from tools.sub_sessions import clamp_wait


def tool_output(events, name_hint: str = "") -> dict:
    outputs = [p for p in parts(events) if p["type"] in ("tool-output-available", "tool-output-error")]
    assert outputs, "no tool output in the stream"
    return outputs[-1].get("output") or {"error": outputs[-1]["errorText"]}


async def test_sub_session_completes_inline(http, user, scripted, stack):
    parent_tag, sub_tag = marker(), marker()
    scripted.script(parent_tag, calls("run_sub_session", {"prompt": f"Summarise {sub_tag}", "wait_for_result": 30}),
                    text_reply("Parent wraps up."))
    scripted.script(sub_tag, text_reply("The sub-session's summary."))
    session_id = await new_session(http, user)

    events = await send(http, user, session_id, f"Delegate {parent_tag}")

    output = tool_output(events)
    assert output["status"] == "completed" and output["response"] == "The sub-session's summary."
    sub_id = output["sub_autopilot_session_id"]
    assert output["link"] == f"/copilot?sessionId={sub_id}"
    sub = (await http.get(f"/api/chat/sessions/{sub_id}", headers=user.headers)).json()
    assert sub["parent_session_id"] == session_id
    assert [m["content"] for m in sub["messages"]] == [f"Summarise {sub_tag}", "The sub-session's summary."]
    rows = await session_rows(stack.database_url, session_id)
    assert [r["role"] for r in rows] == ["user", "assistant", "tool", "assistant"]


async def test_running_sub_is_polled_in_a_later_parent_turn_and_can_be_cancelled(http, user, scripted):
    parent_tag, sub_tag = marker(), marker()
    scripted.script(parent_tag, calls("run_sub_session", {"prompt": f"Long job {sub_tag}", "wait_for_result": 0}),
                    text_reply("Started it."))
    scripted.script(sub_tag, text_reply(" ".join(["step"] * 30), delay=0.05), text_reply("Second job done."))
    session_id = await new_session(http, user)

    first = await send(http, user, session_id, f"Start {parent_tag}")
    assert tool_output(first)["status"] == "running"
    sub_id = tool_output(first)["sub_autopilot_session_id"]

    scripted.script(parent_tag, calls("get_sub_session_result", {"sub_session_id": sub_id, "wait_if_running": 30,
                                                                 "include_progress": True}),
                    text_reply("It finished."))
    polled = tool_output(await send(http, user, session_id, "Is it done?"))
    assert polled["status"] == "completed" and polled["response"] == " ".join(["step"] * 30)
    assert polled["progress"]["message_count"] == 2
    assert all(len(m["content"]) <= 400 for m in polled["progress"]["last_messages"])

    # A second job on the same sub, cancelled while it runs.
    scripted.script(sub_tag, text_reply(" ".join(["slow"] * 200), delay=0.05))
    scripted.script(parent_tag, calls("run_sub_session", {"prompt": "again", "sub_autopilot_session_id": sub_id,
                                                          "wait_for_result": 0}), text_reply("Resumed."))
    resumed = tool_output(await send(http, user, session_id, "Run it again"))
    assert resumed["status"] == "running" and resumed["sub_autopilot_session_id"] == sub_id
    scripted.script(parent_tag, calls("get_sub_session_result", {"sub_session_id": sub_id, "cancel": True,
                                                                 "wait_if_running": 30}), text_reply("Cancelled."))
    cancelled = tool_output(await send(http, user, session_id, "Cancel it"))
    assert cancelled["status"] == "cancelled"
    sub = (await http.get(f"/api/chat/sessions/{sub_id}", headers=user.headers)).json()
    assert sub["active_turn"] is None and sub["messages"][-1]["content"] == "stopped by user"


async def test_a_busy_sub_queues_the_prompt(http, user, scripted):
    parent_tag, sub_tag = marker(), marker()
    scripted.script(parent_tag, calls("run_sub_session", {"prompt": f"Busy work {sub_tag}", "wait_for_result": 0}),
                    text_reply("ok"))
    scripted.script(sub_tag, text_reply(" ".join(["busy"] * 100), delay=0.05), text_reply("Handled the follow-up."))
    session_id = await new_session(http, user)
    sub_id = tool_output(await send(http, user, session_id, f"Go {parent_tag}"))["sub_autopilot_session_id"]

    scripted.script(parent_tag, calls("run_sub_session", {"prompt": "one more thing", "sub_autopilot_session_id": sub_id,
                                                          "wait_for_result": 0}), text_reply("Queued it."))
    queued = tool_output(await send(http, user, session_id, "And this"))
    assert queued["status"] == "queued" and queued["buffer_length"] == 1 and queued["sub_autopilot_session_id"] == sub_id

    sub_events = await follow(http, user, sub_id)
    assert "Handled the follow-up." in "".join(p.get("delta", "") for p in parts(sub_events))


async def test_a_foreign_sub_answers_like_a_missing_one(http, user, scripted, settings):
    stranger = make_user(settings)
    foreign_id = await new_session(http, stranger)
    answers = []
    for sub_id in (foreign_id, str(uuid.uuid4())):
        tag = marker()
        scripted.script(tag, calls("get_sub_session_result", {"sub_session_id": sub_id, "wait_if_running": 0}),
                        text_reply("ok"))
        session_id = await new_session(http, user)
        answers.append(tool_output(await send(http, user, session_id, f"peek {tag}")))
        tag = marker()
        scripted.script(tag, calls("run_sub_session", {"prompt": "x", "sub_autopilot_session_id": sub_id}),
                        text_reply("ok"))
        answers.append(tool_output(await send(http, user, await new_session(http, user), f"resume {tag}")))
    assert answers[0] == answers[2] == {"error": "not_found: No such sub-session."}
    assert answers[1] == answers[3] == {"error": "not_found: No such sub-session."}
    assert (await http.get(f"/api/chat/sessions/{foreign_id}", headers=stranger.headers)).json()["messages"] == []


async def test_the_sub_inherits_the_parents_tools_and_cannot_widen_them(http, user, scripted, stack):
    parent_tag, sub_tag = marker(), marker()
    scripted.script(parent_tag, calls("run_sub_session", {"prompt": f"Try bash {sub_tag}", "wait_for_result": 30}),
                    text_reply("ok"))
    scripted.script(sub_tag, calls("bash_exec", {"command": "echo escaped"}), text_reply("Could not run it."))
    response = await http.post("/api/chat/sessions", headers=user.headers, json={
        "tool_filter": {"allow": ["run_sub_session", "get_current_time"]}})
    session_id = response.json()["id"]

    output = tool_output(await send(http, user, session_id, f"Delegate {parent_tag}"))

    sub_id = output["sub_autopilot_session_id"]
    sub_request = scripted.requests_for(sub_tag)[0]
    assert sorted(t["function"]["name"] for t in sub_request["tools"]) == ["get_current_time", "run_sub_session"]
    parent_request = scripted.requests_for(parent_tag)[0]
    assert sorted(t["function"]["name"] for t in parent_request["tools"]) == ["get_current_time", "run_sub_session"]
    sub_rows = await session_rows(stack.database_url, sub_id)
    tool_row = next(r for r in sub_rows if r["role"] == "tool")
    assert json.loads(tool_row["content"])["error"].startswith("permission_denied")
    metadata = (await db_rows(stack.database_url, "SELECT metadata FROM chat_sessions WHERE id = :id", id=sub_id))[0]
    assert metadata["metadata"]["tool_filter"]["allow"] == ["get_current_time", "run_sub_session"]


async def test_run_a_turn_request_response(http, user, scripted):
    tag = marker()
    scripted.script(tag, text_reply("Plain answer.", delay=0.02))
    session_id = await new_session(http, user)
    response = await http.post(f"/api/chat/sessions/{session_id}/turns", headers=user.headers,
                               json={"message": f"Hello {tag}", "wait_seconds": 30})
    body = response.json()
    assert response.status_code == 200 and body["status"] == "completed" and body["response"] == "Plain answer."
    assert body["token_usage"] == {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
    assert body["usage"] is None and body["queued"] is False  # never the provider's raw cost

    scripted.script(tag, text_reply(" ".join(["slow"] * 100), delay=0.05))
    running = (await http.post(f"/api/chat/sessions/{session_id}/turns", headers=user.headers,
                               json={"message": "slow one", "wait_seconds": 0})).json()
    assert running["status"] == "running"
    queued = (await http.post(f"/api/chat/sessions/{session_id}/turns", headers=user.headers,
                              json={"message": "queued one", "wait_seconds": 0})).json()
    assert queued["status"] == "queued" and queued["pending_buffer_length"] == 1
    bad = await http.post(f"/api/chat/sessions/{session_id}/turns", headers=user.headers,
                          json={"message": "x", "wait_seconds": 99999})
    assert bad.status_code == 422


def test_sub_session_waits_end_before_the_tool_cap():
    assert clamp_wait(300) == 300 and clamp_wait(-5) == 0 and clamp_wait(20, budget=298) == 20
    assert clamp_wait(300, budget=298) == 288  # ends 10 s before the cap
    assert clamp_wait(300, budget=4) == 3.2    # a small cap keeps a fifth of it


async def test_a_long_sub_answers_running_before_the_tool_cap(http, user, scripted, settings):
    """wait_for_result=300 / wait_if_running=300 on a sub that runs longer than the tool cap:
    `running` with the sub's id, never `tool_timeout`."""
    capped = settings.model_copy(update={"tool_timeout_seconds": 4})
    port = free_port()
    server, task = await serve(create_app(capped), port)
    parent_tag, sub_tag = marker(), marker()
    scripted.script(parent_tag, calls("run_sub_session", {"prompt": f"Long job {sub_tag}", "wait_for_result": 300}),
                    text_reply("Started it."))
    scripted.script(sub_tag, text_reply(" ".join(["step"] * 300), delay=0.05))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as capped_http:
            session_id = await new_session(capped_http, user)
            started = time.perf_counter()
            first = tool_output(await send(capped_http, user, session_id, f"Start {parent_tag}"))
            assert time.perf_counter() - started < 8  # the sub alone takes 15 s
            assert first["status"] == "running", first
            sub_id = first["sub_autopilot_session_id"]

            scripted.script(parent_tag, calls("get_sub_session_result", {"sub_session_id": sub_id,
                                                                         "wait_if_running": 300}),
                            text_reply("Still going."))
            polled = tool_output(await send(capped_http, user, session_id, "Is it done?"))
            assert polled["status"] == "running" and polled["sub_autopilot_session_id"] == sub_id, polled
    finally:
        await shutdown(server, task)
    assert (await http.post(f"/api/chat/sessions/{sub_id}/stop", headers=user.headers)).json() == {"stopped": True}


async def test_cancel_reports_how_the_sub_really_ended(http, user, scripted, settings, temporal_client):
    harness = ToolHarness(settings, temporal_client)
    tag = marker()
    scripted.script(tag, text_reply("Done long ago."))
    sub_id = await new_session(http, user)
    await send(http, user, sub_id, f"finish {tag}")
    caller_id, _ = await harness.new_session(user.id)

    result = await harness.run(harness.request(caller_id, user.id, "get_sub_session_result",
                                               {"sub_session_id": sub_id, "cancel": True}))

    assert result.error is None
    assert result.output["status"] == "completed" and result.output["response"] == "Done long ago."


async def test_the_callers_own_session_answers_like_a_missing_sub(user, settings, temporal_client):
    harness = ToolHarness(settings, temporal_client)
    session_id, _ = await harness.new_session(user.id)
    for arguments in ({"wait_if_running": 0}, {"cancel": True}):
        result = await harness.run(harness.request(session_id, user.id, "get_sub_session_result",
                                                   {"sub_session_id": session_id, **arguments}))
        assert result.error == "not_found: No such sub-session.", arguments


async def test_a_resumed_sub_that_is_busy_never_gets_wider_tools(http, user, scripted, settings, temporal_client):
    """`queue_in_session` starts the sub's next turn when its turn ended meanwhile: with the
    parent's tools at most, whatever the sub's own filter says."""
    sub_tag = marker()
    scripted.script(sub_tag, text_reply("Handled."))
    sub_id = await new_session(http, user)  # no filter of its own: all tools
    activities = SubSessionActivities(settings, session_maker(settings.database_url), temporal_client, TEST_TOOLS)

    submitted = await ActivityEnvironment().run(activities.queue_in_session, QueueInSessionRequest(
        session_id=sub_id, user_id=user.id, message=IncomingMessage(message_id=str(uuid.uuid4()),
                                                                    content=f"Follow-up {sub_tag}"),
        title="Sub-session", parent_allowed_tools=["get_current_time"]))

    assert submitted.queued is False

    async def sub_requests():
        return scripted.requests_for(sub_tag)

    sent = await eventually(sub_requests, bool)
    assert [t["function"]["name"] for t in sent[0]["tools"]] == ["get_current_time"]


async def test_sub_sessions_nest_at_most_the_configured_depth(http, user, scripted, stack, settings):
    depth = settings.max_sub_session_depth
    tags = [marker() for _ in range(depth + 2)]
    for level in range(depth + 1):  # each level delegates to the next; the one past the limit is refused
        scripted.script(tags[level], calls("run_sub_session", {"prompt": f"level {level + 1} {tags[level + 1]}",
                                                               "wait_for_result": 60}),
                        text_reply(f"level {level} done"))
    session_id = await new_session(http, user)
    events = await send(http, user, session_id, f"root {tags[0]}")
    assert tool_output(events)["status"] == "completed"
    subs = await db_rows(stack.database_url, "SELECT id FROM chat_sessions WHERE user_id = :u AND "
                                             "parent_session_id IS NOT NULL", u=user.id)
    assert len(subs) == depth
    refused = await db_rows(stack.database_url, "SELECT content FROM chat_messages WHERE role = 'tool' AND "
                                                "content LIKE '{\"error\": \"too_deep%' AND session_id = ANY(:ids)",
                            ids=[s["id"] for s in subs])
    assert len(refused) == 1
