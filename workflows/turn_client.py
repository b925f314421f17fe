"""How callers (the API, the sub-session tools) talk to a session's turn workflow."""

import asyncio
from datetime import timedelta
from typing import Iterable, Optional

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowContinuedAsNewError,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from billing.usage_records import turn_usage
from conversation.sessions import (
    latest_turn_id,
    recorded_tool_result,
    tool_call_entries,
    turn_messages,
    turn_of_message,
)
from models.tool_filter import BUILDER_BLOCKED_TOOLS, ToolFilter
from models.turn import (
    ACTIVE_STATUSES,
    STOP_MARKER,
    STOP_WAIT_SECONDS,
    ApprovalAnswer,
    ChatMode,
    IncomingMessage,
    ModelCallPolicy,
    ModelChoice,
    SubmitResult,
    TokenUsage,
    ToolDecision,
    TurnInput,
    TurnOutcome,
    TurnState,
)
from observability.metrics import temporal_runtime
from observability.temporal import LogContextInterceptor
from observability.tracing import Tracing
from settings import Settings
from workflows import search_attributes
from workflows.copilot_turn import TURN_TASK_TIMEOUT, CopilotTurnWorkflow, turn_workflow_id

DELIVERY_POLL_SECONDS = 1.0  # how often a caller waiting for a queued message looks for its delivery
CLOSING_RETRIES = 250  # x 20 ms: a closing turn finishes its last activity well within this
TURN_CLOSING = "turn_closing: the previous turn is still finishing."


class MessageRefused(Exception):
    """The turn's validator refused the message (empty, too long, buffer full), or the previous
    turn was still closing after every retry (`closing`: worth sending again shortly)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        self.buffer_full = message.startswith("buffer_full")
        self.closing = message.startswith("turn_closing")


class StopPending(Exception):
    """The stop was asked for, but the turn had not closed within the wait. The stop stays
    requested; asking again (stop is idempotent) waits for it."""


async def connect_temporal(settings: Settings, tracing: Optional[Tracing] = None) -> Client:
    """A client on the process's Temporal runtime (whose metrics reach our /metrics), carrying the
    request id into the workflows it starts, and traces when `tracing` is on (its interceptor
    then also serves the workers built from this client)."""
    interceptors = [LogContextInterceptor(), *(tracing.temporal_interceptors() if tracing else [])]
    return await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace, data_converter=pydantic_data_converter,
        runtime=temporal_runtime(), interceptors=interceptors,
    )


def turn_input(settings: Settings, session_id: str, user_id: str, tool_names: Iterable[str],
               tool_filter: Optional[ToolFilter] = None, kind: str = "turn", depth: int = 0, *,
               dry_run: bool = False, mode: ChatMode = "fast", model: ModelChoice = "standard",
               approval_tools: Iterable[str] = (), builder_graph_id: Optional[str] = None) -> TurnInput:
    """A turn's input: its limits from the settings, and the tools it may use resolved here, from
    the catalogue the caller serves (`tool_names`), before the workflow starts. A builder-bound
    turn (`builder_graph_id`) never gets the builder's blocked tools, whatever its filter says."""
    tool_filter = tool_filter or ToolFilter()
    if builder_graph_id:
        tool_filter = tool_filter.denying(BUILDER_BLOCKED_TOOLS)
    return TurnInput(
        session_id=session_id, user_id=user_id, tool_filter=tool_filter, kind=kind, dry_run=dry_run, mode=mode,
        model=model, approval_required_tools=sorted(set(settings.tools_requiring_approval) | set(approval_tools)),
        approval_timeout_seconds=settings.tool_approval_timeout_seconds,
        builder_graph_id=builder_graph_id or None,
        allowed_tools=tool_filter.allowed(tool_names),
        model_policy=ModelCallPolicy(
            heartbeat_timeout_seconds=settings.llm_heartbeat_timeout_seconds,
            round_timeout_seconds=settings.llm_round_timeout_seconds,
            max_attempts=settings.llm_retry_max_attempts,
            initial_retry_seconds=settings.llm_retry_initial_seconds,
            max_retry_interval_seconds=settings.llm_retry_max_interval_seconds,
        ),
        tool_timeout_seconds=settings.tool_timeout_seconds,
        tool_heartbeat_timeout_seconds=settings.tool_heartbeat_timeout_seconds,
        max_rounds=settings.max_rounds, max_buffer_length=settings.max_pending_messages,
        max_tool_calls_per_round=settings.max_tool_calls_per_round, sub_session_depth=depth,
        max_sub_sessions_per_turn=settings.max_sub_sessions_per_turn,
        max_message_chars=settings.max_message_chars,
    )


def search_attributes_for(input: TurnInput) -> TypedSearchAttributes:
    return TypedSearchAttributes([
        SearchAttributePair(search_attributes.USER_ID, input.user_id),
        SearchAttributePair(search_attributes.SESSION_ID, input.session_id),
        SearchAttributePair(search_attributes.TURN_STATUS, "running"),
        SearchAttributePair(search_attributes.KIND, input.kind),
    ])


def _query_literal(value: str) -> str:
    """A string literal for a visibility query (the value is a user's id: it may hold quotes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def running_turns(client: Client, user_id: str, excluding_session: Optional[str] = None) -> int:
    """How many turns of the user are running now (sub-sessions count), from Temporal's
    visibility store: close to real time, so a limit on it is approximate by a turn or two."""
    query = (f"{search_attributes.USER_ID.name} = {_query_literal(user_id)} AND ExecutionStatus = 'Running' "
             f"AND {search_attributes.TURN_STATUS.name} = 'running' "
             f"AND {search_attributes.KIND.name} IN ('turn', 'sub_session')")
    if excluding_session:
        query += f" AND {search_attributes.SESSION_ID.name} != {_query_literal(excluding_session)}"
    return (await client.count_workflows(query)).count


async def submit_message(client: Client, settings: Settings, input: TurnInput, message: IncomingMessage,
                         title: str) -> SubmitResult:
    """Starts a turn with this message, or queues it in the turn already running (one atomic call)."""
    session_id = input.session_id

    def start_operation() -> WithStartWorkflowOperation:  # one per attempt: an operation is single-use
        return WithStartWorkflowOperation(
            CopilotTurnWorkflow.run, input, id=turn_workflow_id(session_id), task_queue=settings.temporal_task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING, memo={"title": title},
            task_timeout=TURN_TASK_TIMEOUT,
            search_attributes=search_attributes_for(input),
        )

    # A turn that is closing refuses new messages for the few milliseconds until it has closed;
    # the next attempt then starts a fresh turn, so a message right after `finish` gets a stream.
    for attempt in range(CLOSING_RETRIES):
        try:
            return await client.execute_update_with_start_workflow(
                CopilotTurnWorkflow.submit_message, message, start_workflow_operation=start_operation(),
                id=f"submit-{message.message_id}-{attempt}",
            )
        except WorkflowUpdateFailedError as failure:
            if not isinstance(failure.cause, ApplicationError):
                raise
            if not failure.cause.message.startswith("turn_closing") or attempt == CLOSING_RETRIES - 1:
                raise MessageRefused(failure.cause.message) from failure
        except RPCError as failure:
            if failure.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise
            if attempt == CLOSING_RETRIES - 1:  # the turn ended under us every time: still closing
                raise MessageRefused(TURN_CLOSING) from failure
        await asyncio.sleep(0.02)
    raise RuntimeError("unreachable")


async def running_turn_state(client: Client, session_id: str) -> Optional[TurnState]:
    """The live state of the session's turn, or None when the session is idle."""
    handle = client.get_workflow_handle(turn_workflow_id(session_id))
    try:
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            return None
        try:
            state = await handle.query(CopilotTurnWorkflow.state, rpc_timeout=timedelta(seconds=5))
        except RPCError as failure:
            if failure.status != RPCStatusCode.DEADLINE_EXCEEDED:
                raise
            # The turn is busy in a long write and cannot answer yet: it is running.
            return TurnState(turn_id=description.run_id, status="running", round=0, buffer_length=0,
                             max_buffer_length=0, pending=[])
        # A turn that has decided its outcome is only closing its stream: the session is idle.
        return state if state.status in ACTIVE_STATUSES or state.buffer_length else None
    except RPCError as failure:
        if failure.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def stop_turn(client: Client, session_id: str, timeout_seconds: Optional[float] = None) -> bool:
    """Stops the session's running turn and returns once that turn has closed (the session is
    idle, or already working on follow-ups queued before the stop). False when nothing ran.
    Raises `StopPending` when the turn has not closed within `timeout_seconds` (default
    `STOP_WAIT_SECONDS`); nothing is terminated, the stop stays requested."""
    timeout = STOP_WAIT_SECONDS if timeout_seconds is None else timeout_seconds
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        description = await client.get_workflow_handle(turn_workflow_id(session_id)).describe()
    except RPCError as failure:
        if failure.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    if description.status != WorkflowExecutionStatus.RUNNING:
        return False
    run = client.get_workflow_handle(turn_workflow_id(session_id), run_id=description.run_id)
    try:
        stopped = await asyncio.wait_for(run.execute_update(CopilotTurnWorkflow.stop), timeout)
    except (WorkflowUpdateFailedError, RPCError):
        return False  # the turn closed on its own meanwhile
    except (asyncio.TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):  # the SDK's name for a cut wait
        raise StopPending(f"the turn of session {session_id} did not take the stop within {timeout:.0f}s") from None
    try:
        await asyncio.wait_for(run.result(follow_runs=False), max(deadline - loop.time(), 0.1))
    except (WorkflowContinuedAsNewError, WorkflowFailureError):
        pass
    except asyncio.TimeoutError:
        raise StopPending(f"the turn of session {session_id} did not close within {timeout:.0f}s") from None
    return stopped


async def stop_turns_without_waiting(client: Client, session_ids: Iterable[str]) -> None:
    """Asks each session's running turn to stop, and does not wait; an idle session is skipped."""
    async def ask(session_id: str) -> None:
        try:
            await client.get_workflow_handle(turn_workflow_id(session_id)).signal(
                CopilotTurnWorkflow.stop_without_waiting)
        except RPCError as failure:
            if failure.status != RPCStatusCode.NOT_FOUND:
                raise

    await asyncio.gather(*(ask(session_id) for session_id in session_ids))


async def end_turn_for_deletion(client: Client, session_id: str, stop_wait_seconds: float = 5.0) -> None:
    """Stops the session's turn (which stops the sub-sessions it started), then terminates
    whatever has not closed: nothing is left running against a session that is being deleted."""
    try:
        await stop_turn(client, session_id, stop_wait_seconds)
    except StopPending:
        pass
    await terminate_turn(client, session_id, reason="session deleted by its owner")


class ApprovalRefused(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


async def decide_tool_call(client: Client, sessions: async_sessionmaker[AsyncSession], session_id: str,
                           decision: ToolDecision) -> ApprovalAnswer:
    """Hands a person's decision to the turn whose call waits for it. A call no turn waits for
    any more is answered from the record: the same decision again is fine (`already`), anything
    else is a 409 saying why; an approval the session never had is a 404."""
    handle = client.get_workflow_handle(turn_workflow_id(session_id))
    try:
        return await handle.execute_update(CopilotTurnWorkflow.decide_tool_call, decision,
                                           rpc_timeout=timedelta(seconds=10))
    except WorkflowUpdateFailedError as failure:
        message = failure.cause.message if isinstance(failure.cause, ApplicationError) else ""
        if message.startswith(("approval_closed", "already_decided")):
            raise ApprovalRefused(409, message.split(":", 1)[0], message.split(":", 1)[1].strip()) from None
        if not message.startswith("unknown_approval"):
            raise
    except RPCError as failure:
        if failure.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise
    async with sessions() as db:  # no turn waits for it: how did the call end?
        result = await recorded_tool_result(db, session_id, decision.approval_id.removeprefix("approval_"))
    if result is None:
        raise ApprovalRefused(404, "not_found", "No such approval.")
    ended = decided_by_record(result)
    wanted = "approved" if decision.approved else "denied"
    if ended == wanted:
        return ApprovalAnswer(approval_id=decision.approval_id, status=wanted, already=True)
    reasons = {"stopped": "the turn was stopped.", "timed_out": "the call was not approved in time and was not run.",
               "approved": "this call was already approved.", "denied": "this call was already denied."}
    code = "already_decided" if ended in ("approved", "denied") else "approval_closed"
    raise ApprovalRefused(409, code, reasons[ended])


def decided_by_record(tool_result: str) -> str:
    """How a call that asked for approval ended, from its stored result."""
    if STOP_MARKER in tool_result:
        return "stopped"
    if "approval_timed_out:" in tool_result:
        return "timed_out"
    if "approval_denied:" in tool_result:
        return "denied"
    return "approved"


async def terminate_turn(client: Client, session_id: str, reason: str) -> None:
    """Ends a session's running turn at once (the session is being deleted)."""
    try:
        await client.get_workflow_handle(turn_workflow_id(session_id)).terminate(reason=reason)
    except RPCError as failure:
        if failure.status != RPCStatusCode.NOT_FOUND:
            raise


async def recorded_outcome(sessions: async_sessionmaker[AsyncSession], session_id: str, turn_id: str,
                           running: bool = False) -> TurnOutcome:
    """How a turn went, from Postgres, the durable record: its answer, its tool calls with their
    results, its token counts (a running turn: what it has stored so far)."""
    async with sessions() as db:
        rows = await turn_messages(db, session_id, turn_id)
        usage = await turn_usage(db, turn_id)
    markers = [r.content for r in rows if r.role == "system"]
    answers = [r for r in rows if r.role == "assistant"]
    outcome = TurnOutcome(
        status="running", turn_id=turn_id, response=answers[-1].content if answers else None,
        tool_calls=tool_call_entries(rows), usage=usage,
        token_usage=TokenUsage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                               total_tokens=usage.prompt_tokens + usage.completion_tokens),
    )
    if running:
        return outcome
    if STOP_MARKER in markers:
        return outcome.model_copy(update={"status": "cancelled"})
    if markers:
        return outcome.model_copy(update={"status": "error", "error": markers[-1]})
    return outcome.model_copy(update={"status": "completed"})


async def _run_ended(client: Client, session_id: str, run_id: str, wait_seconds: float) -> bool:
    """Waits up to `wait_seconds` for one run of the session's turn workflow; True once it has ended."""
    handle = client.get_workflow_handle(turn_workflow_id(session_id), run_id=run_id)
    try:
        await asyncio.wait_for(handle.result(follow_runs=False), max(wait_seconds, 0.001))
    except asyncio.TimeoutError:
        return False
    except (WorkflowContinuedAsNewError, WorkflowFailureError):
        pass
    except RPCError as failure:
        if failure.status != RPCStatusCode.NOT_FOUND:
            raise
    return True


async def turn_outcome(client: Client, sessions: async_sessionmaker[AsyncSession], session_id: str,
                       wait_seconds: float) -> TurnOutcome:
    """Waits up to `wait_seconds` for the session's turn (following auto-continues), then how its
    latest turn went."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        try:
            description = await client.get_workflow_handle(turn_workflow_id(session_id)).describe()
        except RPCError as failure:
            if failure.status != RPCStatusCode.NOT_FOUND:
                raise
            description = None
        if description is None or description.status != WorkflowExecutionStatus.RUNNING:
            break
        if not await _run_ended(client, session_id, description.run_id, deadline - loop.time()):
            return await recorded_outcome(sessions, session_id, description.run_id, running=True)
    async with sessions() as db:
        latest = await latest_turn_id(db, session_id)
    if latest is None:
        return TurnOutcome(status="completed")
    return await recorded_outcome(sessions, session_id, latest)


async def message_outcome(client: Client, sessions: async_sessionmaker[AsyncSession], session_id: str,
                          message_id: str, wait_seconds: float, turn_id: Optional[str] = None) -> TurnOutcome:
    """Waits up to `wait_seconds` for the turn that delivers this message (the one it started, the
    running turn it joined at a round boundary, or the auto-continued turn it opened), then how
    that turn went; `running` (with what it has so far) if it has not ended by then. `turn_id`:
    the turn the message started, when it started one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        if turn_id is None:
            async with sessions() as db:
                turn_id = await turn_of_message(db, session_id, message_id)
        if turn_id is not None:
            if await _run_ended(client, session_id, turn_id, deadline - loop.time()):
                return await recorded_outcome(sessions, session_id, turn_id)
            return await recorded_outcome(sessions, session_id, turn_id, running=True)
        remaining = deadline - loop.time()
        if remaining <= 0:
            return TurnOutcome(status="running")
        # Still in a buffer: it is delivered at the running turn's next round boundary or when
        # that turn ends, so look again then (or after a short while).
        try:
            description = await client.get_workflow_handle(turn_workflow_id(session_id)).describe()
            await _run_ended(client, session_id, description.run_id, min(remaining, DELIVERY_POLL_SECONDS))
        except RPCError as failure:
            if failure.status != RPCStatusCode.NOT_FOUND:
                raise
            await asyncio.sleep(min(remaining, DELIVERY_POLL_SECONDS))


class TemporalSubSessions:
    """`tools.base.SubSessionControl` over Temporal: what the sub-session tools use."""

    def __init__(self, client: Client, sessions: async_sessionmaker[AsyncSession]):
        self.client = client
        self.sessions = sessions

    async def stop(self, session_id: str, timeout_seconds: float) -> Optional[bool]:
        try:
            return await stop_turn(self.client, session_id, timeout_seconds)
        except StopPending:
            return None

    async def outcome(self, session_id: str, wait_seconds: float) -> TurnOutcome:
        return await turn_outcome(self.client, self.sessions, session_id, wait_seconds)
