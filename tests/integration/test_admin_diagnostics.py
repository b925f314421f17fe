"""The admin diagnostics and operations API on the real stack: running, stuck (a model that stops
sending), failed and completed turns show in the figures and the lists; stops leave sessions idle
with well-formed transcripts; a turn that ignores Stop is terminated; every action is audited,
and no one but an admin reaches any of it.

The thresholds are seconds here (a turn is long-running after 1 s, stuck after 1 s of silence),
served by a second API on those settings beside the shared one that the turns are sent to."""

import asyncio
import uuid

import pytest

from api.auth import issue_token
from local.model import chunks
from tests.support.extra_tools import TEST_TOOLS
from tests.support.helpers import (
    eventually,
    follow,
    marker,
    new_session,
    queue,
    send,
    session_rows,
    slow_text,
    start_turn,
    stop,
)
from tests.support.scripted_model import Fail, Stream, text_reply, tool_call_reply
from tests.support.servers import api_with
from tests.support.sse_client import assert_well_formed, iter_events, part_types
from tests.support.users import make_user
from workflows import turn_client
from workflows.copilot_turn import CopilotTurnWorkflow, turn_workflow_id

ADMIN = "/api/admin"
TURNS = f"{ADMIN}/diagnostics/turns"
QUIET_SECONDS = 1.0


def silent_model() -> Stream:
    """A model that accepts the request and then sends nothing for half a minute."""
    return Stream([chunks.text("Too late."), chunks.finish("stop"), chunks.usage(1, 1, 0.0001)], first_delay=30)


@pytest.fixture(scope="module")
async def ops(settings, worker):
    async with api_with(settings, stream_idle_timeout_seconds=QUIET_SECONDS, long_running_turn_seconds=QUIET_SECONDS,
                        admin_terminate_stop_wait_seconds=0.5) as client:
        yield client


@pytest.fixture
def admin(settings) -> dict[str, str]:
    token = issue_token(settings.jwt_secret, f"admin-{uuid.uuid4().hex[:8]}", role="admin",
                        issuer=settings.jwt_issuer, audience=settings.jwt_audience)
    return {"Authorization": f"Bearer {token}"}


async def summary(ops, admin) -> dict:
    response = await ops.get(TURNS, headers=admin)
    assert response.status_code == 200, response.text
    return response.json()


async def listed(ops, admin, kind: str, **params) -> dict[str, dict]:
    response = await ops.get(f"{TURNS}/{kind}", headers=admin, params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] >= len(page["turns"])
    return {turn["session_id"]: turn for turn in page["turns"]}


async def audit(ops, admin, **params) -> list[dict]:
    response = await ops.get(f"{ADMIN}/audit", headers=admin, params=params)
    assert response.status_code == 200, response.text
    return response.json()["entries"]


async def start_turn_until(http, user, session_id: str, message: str, part_type: str) -> None:
    """Sends a message and reads its stream up to the first part of this type, leaving the turn running."""
    async with http.stream("POST", f"/api/chat/sessions/{session_id}/stream", json={"message": message},
                           headers=user.headers) as response:
        assert response.status_code == 200
        async for event in iter_events(response):
            if event.part and event.part["type"] == part_type:
                return
    raise AssertionError(f"the stream ended without a {part_type} part")


async def silent_turn(http, user, scripted, *then) -> str:
    tag = marker()
    scripted.script(tag, silent_model(), *then)
    session_id = await new_session(http, user)
    await start_turn(http, user, session_id, f"wait for it {tag}", read=1)
    return session_id


async def test_running_stuck_failed_and_completed_turns_are_counted_and_listed(http, user, scripted, ops, admin):
    before = await summary(ops, admin)
    done_tag, failed_tag, streaming_tag = marker(), marker(), marker()
    scripted.script(done_tag, text_reply("Done."))
    scripted.script(failed_tag, Fail(400, "the provider refused"))
    scripted.script(streaming_tag, slow_text(400, 0.05))
    done, failed, streaming = [await new_session(http, user) for _ in range(3)]
    await send(http, user, done, f"quick {done_tag}")
    await send(http, user, failed, f"refused {failed_tag}")
    await start_turn(http, user, streaming, f"talk {streaming_tag}")
    stuck = await silent_turn(http, user, scripted, text_reply("Caught up."))
    for follow_up in ("one more", "and another"):
        assert (await queue(http, user, stuck, follow_up)).status_code == 202

    figures = await eventually(lambda: summary(ops, admin), lambda f: (
        f["stuck"] and f["long_running"] >= 2 and f["completed_1h"] > before["completed_1h"]
        and f["failed_1h"] > before["failed_1h"]))
    assert figures["running_turns"] >= 2 and figures["queued_follow_ups"] >= 2
    assert figures["failed_24h"] >= figures["failed_1h"] and figures["completed_24h"] >= figures["completed_1h"]
    assert 0 < figures["failure_rate_24h"] < 1
    assert figures["throughput_per_hour"] == pytest.approx(figures["completed_24h"] / 24)
    assert figures["oldest_running_hours"] > 0 and figures["stuck_after_seconds"] == QUIET_SECONDS

    running = await listed(ops, admin, "running")
    assert {stuck, streaming} <= set(running) and not {done, failed} & set(running)
    row = running[stuck]
    assert (row["user_id"], row["kind"], row["status"], row["round"], row["buffer_length"]) == (
        user.id, "turn", "running", 1, 2)
    assert row["title"].startswith("wait for it") and row["last_event_at"] is not None
    stuck_list = await listed(ops, admin, "stuck")
    assert stuck in stuck_list and streaming not in stuck_list
    assert {stuck, streaming} <= set(await listed(ops, admin, "long-running"))
    failed_list = await listed(ops, admin, "failed", hours=1)
    assert failed in failed_list and done not in failed_list and stuck not in failed_list
    assert failed_list[failed]["status"] == "completed" and failed_list[failed]["turn_status"] == "failed"
    assert "try again" in failed_list[failed]["error"]

    await stop(http, user, streaming)
    await stop(http, user, stuck)


async def test_bulk_stop_leaves_every_targeted_session_idle_and_well_formed(http, user, scripted, ops, admin,
                                                                            stack):
    quiet = [await silent_turn(http, user, scripted) for _ in range(2)]
    tool_tag = marker()
    scripted.script(tool_tag, tool_call_reply("stubborn_nap", {"seconds": 20}), text_reply("Rested."))
    in_tool = await new_session(http, user)
    await start_turn_until(http, user, in_tool, f"rest {tool_tag}", "tool-input-available")
    await asyncio.sleep(0.3)  # the tool's activity is scheduled once its call is recorded
    idle, unknown = await new_session(http, user), str(uuid.uuid4())
    targets = [*quiet, in_tool]

    response = await ops.post(f"{TURNS}/stop-bulk", headers=admin, json={"session_ids": [*targets, idle, unknown,
                                                                                          quiet[0]]})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["success"], answer["stopped_count"], answer["requested_count"]) == (True, 3, 5)
    assert answer["message"] == "Stopped 3 of 5 turns."
    assert answer["outcomes"] == {**{s: "stopped" for s in targets}, idle: "not_running", unknown: "not_running"}

    for session_id in targets:
        detail = (await http.get(f"/api/chat/sessions/{session_id}", headers=user.headers)).json()
        assert detail["active_turn"] is None
        events = await follow(http, user, session_id)
        assert_well_formed(events)
        assert "abort" in part_types(events)
        rows = await session_rows(stack.database_url, session_id)
        assert rows[-1]["role"] == "system" and rows[-1]["content"] == "stopped by user"
    tool_rows = [r for r in await session_rows(stack.database_url, in_tool) if r["role"] == "tool"]
    assert len(tool_rows) == 1 and "stopped by user" in tool_rows[0]["content"]

    [entry] = await audit(ops, admin, action="stop_turns", limit=1)
    assert entry["outcome"] == "stopped 3 of 5" and entry["details"]["outcomes"] == answer["outcomes"]
    assert entry["admin_id"].startswith("admin-") and entry["target"] is None
    assert [e["id"] for e in await audit(ops, admin, target=in_tool)] == [entry["id"]]

    for empty in ([], [idle, unknown]):  # nothing to act on: success false, not an error
        response = await ops.post(f"{TURNS}/stop-bulk", headers=admin, json={"session_ids": empty})
        assert response.status_code == 200
        assert response.json() | {"outcomes": None} == {"success": False, "stopped_count": 0,
                                                        "requested_count": len(empty),
                                                        "message": "No running turns found.", "outcomes": None}
    assert (await audit(ops, admin, action="stop_turns", limit=1))[0]["outcome"] == "stopped 0 of 2"


async def test_stop_one_and_stop_every_long_running_turn(http, user, scripted, ops, admin):
    one = await silent_turn(http, user, scripted)
    answers = [await ops.post(f"{TURNS}/stop", headers=admin, json={"session_id": one}) for _ in range(2)]
    assert [a.json()["success"] for a in answers] == [True, False]
    assert answers[0].json()["message"] == "Turn stopped." and answers[0].json()["stopped_count"] == 1
    assert answers[1].json()["outcomes"] == {one: "not_running"}
    missing = await ops.post(f"{TURNS}/stop", headers=admin, json={"session_id": str(uuid.uuid4())})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert (await ops.post(f"{TURNS}/stop", headers=admin, json={"session_id": "../x"})).status_code == 422
    assert [e["outcome"] for e in await audit(ops, admin, target=one)] == ["not_running", "stopped"]

    old = [await silent_turn(http, user, scripted) for _ in range(2)]
    await eventually(lambda: listed(ops, admin, "long-running"), lambda turns: set(old) <= set(turns))
    response = await ops.post(f"{TURNS}/stop-all-long-running", headers=admin)
    answer = response.json()
    assert answer["success"] and answer["stopped_count"] >= 2 and {answer["outcomes"][s] for s in old} == {"stopped"}
    # Other tests' turns share the namespace; one whose worker is gone may still be closing.
    assert answer["message"].startswith(f"Stopped {answer['stopped_count']} long-running turns")
    await eventually(lambda: listed(ops, admin, "running"), lambda turns: not set(old) & set(turns))
    again = (await ops.post(f"{TURNS}/stop-all-long-running", headers=admin)).json()
    assert (again["success"], again["stopped_count"]) == (False, 0)
    entries = await audit(ops, admin, action="stop_all_long_running", limit=2)
    assert entries[0]["outcome"].startswith("stopped 0 of")  # of 0, or of a foreign turn still closing
    assert entries[1]["outcome"] == f"stopped {answer['stopped_count']} of {answer['requested_count']}"


async def test_only_a_stuck_turn_that_ignores_stop_is_terminated(http, user, scripted, ops, admin, settings,
                                                                temporal_client):
    streaming_tag = marker()
    scripted.script(streaming_tag, slow_text(200, 0.05))
    streaming = await new_session(http, user)
    await start_turn(http, user, streaming, f"talk {streaming_tag}")
    refused = await ops.post(f"{TURNS}/terminate", headers=admin, json={"session_id": streaming, "reason": "test"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "turn_not_stuck"
    await stop(http, user, streaming)

    # Stuck because the model went silent: it still takes a Stop, so nothing is terminated.
    quiet = await silent_turn(http, user, scripted)
    await asyncio.sleep(QUIET_SECONDS + 0.2)
    taken = await ops.post(f"{TURNS}/terminate", headers=admin, json={"session_id": quiet, "reason": "silent model"})
    assert taken.json() == {"success": True, "outcome": "stopped",
                            "message": "The turn took the stop and has closed; nothing was terminated."}

    # Stuck because nothing runs it (no worker polls its task queue): it cannot take a Stop.
    orphan = await new_session(http, user)
    turn = turn_client.turn_input(settings, orphan, user.id, TEST_TOOLS)
    await temporal_client.start_workflow(CopilotTurnWorkflow.run, turn, id=turn_workflow_id(orphan),
                                         task_queue=f"no-worker-{uuid.uuid4().hex[:8]}",
                                         search_attributes=turn_client.search_attributes_for(turn))
    await asyncio.sleep(QUIET_SECONDS + 0.2)
    assert (await summary(ops, admin))["unanswered"] >= 1
    ended = await ops.post(f"{TURNS}/terminate", headers=admin,
                           json={"session_id": orphan, "reason": "no worker serves its queue"})
    assert ended.status_code == 200, ended.text
    assert ended.json()["outcome"] == "terminated" and ended.json()["success"] is True
    description = await temporal_client.get_workflow_handle(turn_workflow_id(orphan)).describe()
    assert description.status.name == "TERMINATED"
    failed = await eventually(lambda: listed(ops, admin, "failed", hours=1), lambda turns: orphan in turns)
    assert failed[orphan]["status"] == "terminated"
    assert failed[orphan]["error"].startswith("terminated: no worker serves its queue (by admin admin-")

    again = await ops.post(f"{TURNS}/terminate", headers=admin, json={"session_id": orphan, "reason": "again"})
    assert again.json()["outcome"] == "not_running" and again.json()["success"] is False
    unknown = await ops.post(f"{TURNS}/terminate", headers=admin, json={"session_id": str(uuid.uuid4()),
                                                                         "reason": "none"})
    assert unknown.status_code == 404
    blank = await ops.post(f"{TURNS}/terminate", headers=admin, json={"session_id": orphan, "reason": "  "})
    assert blank.status_code == 422
    entries = await audit(ops, admin, action="terminate_turn", limit=5)
    assert [(e["outcome"], e["reason"]) for e in entries][1:4] == [
        ("not_running", "again"), ("terminated", "no worker serves its queue"), ("stopped", "silent model")]
    assert entries[0]["outcome"] == "not_found" and entries[4]["outcome"] == "not_stuck"


async def test_one_call_looks_a_user_up(http, user, scripted, ops, admin, settings):
    await new_session(http, user)
    running = await silent_turn(http, user, scripted)

    async def look_up() -> dict:
        response = await ops.get(f"{ADMIN}/users/{user.id}", headers=admin)
        assert response.status_code == 200, response.text
        return response.json()

    # Visibility follows a new turn within milliseconds, and its round is set once its first writes are done.
    found = await eventually(look_up, lambda found: [t["round"] for t in found["running_turns"]] == [1])
    assert (found["user_id"], found["tier"], found["credits"], found["session_count"]) == (
        user.id, "FREE", settings.initial_credits, 2)
    assert found["usage"]["user_id"] == user.id and found["usage"]["daily_cost_used_microdollars"] == 0
    assert running in {s["id"] for s in found["sessions"]}
    assert [(t["session_id"], t["round"]) for t in found["running_turns"]] == [(running, 1)]
    missing = await ops.get(f"{ADMIN}/users/nobody-{uuid.uuid4().hex}", headers=admin)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    await stop(http, user, running)


async def test_no_one_but_an_admin_reaches_any_admin_route(http, settings):
    paths = (await http.get("/openapi.json")).json()["paths"]
    routes = [(method, path.replace("{user_id}", "someone")) for path, operations in paths.items()
              if path.startswith(ADMIN) for method in operations]
    assert len(routes) >= 13
    someone = make_user(settings)
    for method, path in routes:
        as_user = await http.request(method, path, headers=someone.headers, json={})
        anonymous = await http.request(method, path, json={})
        assert as_user.status_code == 403 and as_user.json()["error"]["code"] == "forbidden", (method, path)
        assert anonymous.status_code == 401, (method, path)
