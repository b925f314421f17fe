"""Records the workflow histories that tests/workflows/test_replay.py replays.

Skipped in `make test`; `make record-histories` runs it on the real stack (API, worker,
Temporal dev server, PostgreSQL, Redis, the scripted model and the Stripe sandbox) and writes
one JSON file per representative run into tests/workflows/histories/. Re-record only when a
change is meant to start new histories (a new workflow type or a `workflow.patched` branch),
and keep the old files: they are what in-flight runs of the previous deploy look like.
"""

import asyncio
import json
import os
from pathlib import Path

import pytest
from temporalio.client import WorkflowContinuedAsNewError

from local.model import chunks
from tests.support.helpers import db_rows, eventually, follow, marker, new_session, queue, send
from tests.support.scripted_model import Stream, text_reply, tool_call_reply
from tests.support.users import make_user
from workflows.copilot_turn import turn_workflow_id
from workflows.subscription import subscription_workflow_id

HISTORIES = Path(__file__).resolve().parents[1] / "workflows" / "histories"

pytestmark = pytest.mark.skipif(not os.environ.get("RECORD_HISTORIES"),
                                reason="re-records the replay histories: make record-histories")


async def save(temporal_client, name: str, workflow_id: str, run_id: str | None = None, whole: bool = True) -> None:
    """Saves the run's history; `whole`: once the run has ended (a stream's `finish` goes out
    before the run's last workflow task completes)."""
    handle = temporal_client.get_workflow_handle(workflow_id, run_id=run_id)
    if whole:
        try:
            await asyncio.wait_for(handle.result(follow_runs=False), 60)
        except WorkflowContinuedAsNewError:
            pass
    history = await handle.fetch_history()
    HISTORIES.mkdir(parents=True, exist_ok=True)
    (HISTORIES / f"{name}.json").write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")


async def runs_of(temporal_client, session_id: str) -> list[str]:
    """The run ids of a session's turn workflow, oldest first (auto-continue makes several)."""
    found = [w async for w in temporal_client.list_workflows(f"WorkflowId = '{turn_workflow_id(session_id)}'")]
    return [w.run_id for w in sorted(found, key=lambda w: w.start_time)]


async def wait_idle(temporal_client, session_id: str) -> None:
    handle = temporal_client.get_workflow_handle(turn_workflow_id(session_id))
    await asyncio.wait_for(handle.result(), 60)


async def test_record_turn_histories(http, user, scripted, temporal_client, stack):
    tag = marker()
    scripted.script(tag, text_reply("Just words."))
    session_id = await new_session(http, user)
    await send(http, user, session_id, f"text {tag}")
    await save(temporal_client, "turn_text_only", turn_workflow_id(session_id))

    tag = marker()
    scripted.script(tag, Stream([chunks.reasoning("Thinking it through. "), chunks.text("Thought about it."),
                                 chunks.finish("stop"), chunks.usage(5, 5, 0.0002)]))
    session_id = await new_session(http, user)
    await send(http, user, session_id, f"reason {tag}")
    await save(temporal_client, "turn_reasoning", turn_workflow_id(session_id))

    tag = marker()
    scripted.script(tag, tool_call_reply("get_current_time", {"timezone": "UTC"}), text_reply("It is now."))
    session_id = await new_session(http, user)
    await send(http, user, session_id, f"time {tag}")
    await save(temporal_client, "turn_tool_round", turn_workflow_id(session_id))

    # Two tool rounds; a follow-up sent during the first tool joins at the round boundary.
    tag = marker()
    scripted.script(tag, tool_call_reply("stubborn_nap", {"seconds": 1.5}),
                    tool_call_reply("get_current_time", {"timezone": "UTC"}), text_reply("Both done."))
    session_id = await new_session(http, user)
    opened = asyncio.create_task(send(http, user, session_id, f"two rounds {tag}"))
    await asyncio.sleep(0.7)
    queued = await queue(http, user, session_id, "also this")
    assert queued.status_code == 202, queued.text
    await opened
    await wait_idle(temporal_client, session_id)
    await save(temporal_client, "turn_two_tool_rounds_follow_up", turn_workflow_id(session_id))

    # Stop while a tool runs.
    tag = marker()
    scripted.script(tag, tool_call_reply("stubborn_nap", {"seconds": 5}), text_reply("Never said."))
    session_id = await new_session(http, user)
    task = asyncio.create_task(send(http, user, session_id, f"stop me {tag}"))
    await asyncio.sleep(0.8)
    stopped = await http.post(f"/api/chat/sessions/{session_id}/stop", headers=user.headers)
    assert stopped.json() == {"stopped": True}, stopped.text
    await task
    await save(temporal_client, "turn_stop_during_tool", turn_workflow_id(session_id))

    # Auto-continue: a follow-up still queued when the model finishes opens the next run.
    tag = marker()
    scripted.script(tag, text_reply(" ".join(f"w{i}" for i in range(30)), delay=0.03), text_reply("Second turn."))
    session_id = await new_session(http, user)
    task = asyncio.create_task(send(http, user, session_id, f"long {tag}"))
    await asyncio.sleep(0.4)
    queued = await queue(http, user, session_id, "after that")
    assert queued.status_code == 202, queued.text
    await task
    await follow(http, user, session_id)
    await wait_idle(temporal_client, session_id)
    first, second = (await runs_of(temporal_client, session_id))[:2]
    await save(temporal_client, "turn_auto_continue_first_run", turn_workflow_id(session_id), first)
    await save(temporal_client, "turn_auto_continue_second_run", turn_workflow_id(session_id), second)

    # A sub-session: the parent's turn starts the sub's turn as a child workflow.
    parent_tag, sub_tag = marker(), marker()
    scripted.script(parent_tag, tool_call_reply("run_sub_session", {"prompt": f"Summarise {sub_tag}",
                                                                    "wait_for_result": 30}),
                    text_reply("The sub-session answered."))
    scripted.script(sub_tag, text_reply("A summary."))
    session_id = await new_session(http, user)
    events = await send(http, user, session_id, f"delegate {parent_tag}")
    sub_id = next(p["output"]["sub_autopilot_session_id"] for p in (e.part for e in events if e.part)
                  if p["type"] == "tool-output-available")
    await save(temporal_client, "turn_sub_session_parent", turn_workflow_id(session_id))
    await save(temporal_client, "turn_sub_session_child", turn_workflow_id(sub_id))

    # Stop while a sub-session runs: the parent signals the sub to stop.
    parent_tag, sub_tag = marker(), marker()
    scripted.script(parent_tag, tool_call_reply("run_sub_session", {"prompt": f"Slowly {sub_tag}",
                                                                    "wait_for_result": 60}), text_reply("Never said."))
    scripted.script(sub_tag, text_reply(" ".join(f"w{i}" for i in range(300)), delay=0.05))
    session_id = await new_session(http, user)
    task = asyncio.create_task(send(http, user, session_id, f"delegate slowly {parent_tag}"))
    await eventually(lambda: asyncio.sleep(0, result=scripted.requests_for(sub_tag)), bool)
    stopped = await http.post(f"/api/chat/sessions/{session_id}/stop", headers=user.headers)
    assert stopped.json() == {"stopped": True}, stopped.text
    await task
    [sub] = await db_rows(stack.database_url, "SELECT id FROM chat_sessions WHERE parent_session_id = :p",
                          p=session_id)
    sub_id = sub["id"]
    await wait_idle(temporal_client, sub_id)
    await save(temporal_client, "turn_stop_reaches_sub_session_parent", turn_workflow_id(session_id))
    await save(temporal_client, "turn_stop_reaches_sub_session_child", turn_workflow_id(sub_id))


async def test_record_spend_limit_history(http, scripted, settings, temporal_client):
    """A round's cost reaches the daily limit: the turn ends before its next round."""
    spender = make_user(settings)
    tag = marker()
    scripted.script(tag, tool_call_reply("get_current_time", {"timezone": "UTC"},
                                         cost=settings.daily_cost_limit_microdollars / 1_000_000),
                    text_reply("Never said."))
    session_id = await new_session(http, spender)
    await send(http, spender, session_id, f"spend {tag}")
    await wait_idle(temporal_client, session_id)
    await save(temporal_client, "turn_spend_limit_between_rounds", turn_workflow_id(session_id))


async def test_record_subscription_history(http, settings, stripe_sandbox, user, temporal_client):
    """FREE -> PRO through Checkout and its webhooks, then PRO -> FREE at the period end (a timer)."""
    sandbox = stripe_sandbox[0]
    sandbox.deliver_webhooks = True
    redirects = {"success_url": f"{settings.frontend_origin}/ok", "cancel_url": f"{settings.frontend_origin}/no"}
    started = await http.post("/api/credits/subscription", json={"tier": "PRO", **redirects}, headers=user.headers)
    sandbox.complete_checkout(started.json()["url"].rstrip("/").rsplit("/", 1)[-1])
    await sandbox.flush_webhooks()

    async def tier() -> str:
        return (await http.get("/api/credits/subscription", headers=user.headers)).json()["tier"]
    await eventually(tier, lambda value: value == "PRO")
    cancelled = await http.post("/api/credits/subscription", json={"tier": "FREE"}, headers=user.headers)
    assert cancelled.json()["pending_tier"] == "FREE", cancelled.text
    await save(temporal_client, "subscription_checkout_then_cancel", subscription_workflow_id(user.id), whole=False)


async def test_record_approval_history(http, user, scripted, temporal_client):
    """A tool call that waits for approval, then is approved and runs."""
    tag = marker()
    scripted.script(tag, tool_call_reply("get_current_time", {"timezone": "UTC"}, call_id="call_rec"),
                    text_reply("Approved and ran."))
    created = await http.post("/api/chat/sessions", json={"require_approval": ["get_current_time"]},
                              headers=user.headers)
    session_id = created.json()["id"]
    streaming = asyncio.create_task(send(http, user, session_id, f"approve {tag}"))

    async def waiting() -> bool:
        turn = (await http.get(f"/api/chat/sessions/{session_id}", headers=user.headers)).json()["active_turn"]
        return bool(turn and turn["awaiting_approval"])
    await eventually(waiting, bool)
    decided = await http.post(f"/api/chat/sessions/{session_id}/tool-approvals/approval_call_rec",
                              json={"approved": True}, headers=user.headers)
    assert decided.status_code == 200, decided.text
    await streaming
    await save(temporal_client, "turn_tool_approval", turn_workflow_id(session_id))
