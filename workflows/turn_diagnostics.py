"""What operators see of every turn, and what they may do to one.

The figures come from Temporal's visibility store (every turn carries the search attributes
CopilotUserId, CopilotSessionId, CopilotTurnStatus and CopilotKind), from each running turn's
own `state` query (its round and buffer), and from its Redis stream (when it last moved):

- counts are `count_workflows` queries: one indexed count each, whatever the page;
- running, long-running and failed lists page through `list_workflows`;
- what needs every running turn (queued follow-ups, stuck, the oldest) reads the running turns
  once (at most `RUNNING_SCAN_LIMIT`), queries each (`QUERY_CONCURRENCY` at a time, each cut
  at `QUERY_TIMEOUT`), and reads all their streams' last entries in one Redis round trip.

Closed workflows cost only through the time-bounded queries (`CloseTime > now - 1h / 24h`),
which the store answers from its close-time index: what ended long ago is never read.

Whether a turn is running is Temporal's execution status, never CopilotTurnStatus alone: a run
started by continue-as-new (auto-continue) inherits the attribute of the run before it
("completed"), and the attribute is set to the outcome while the turn is still closing.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable, Iterable, Optional, Sequence, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowHistoryEventFilterType,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.service import RPCError, RPCStatusCode

from models.diagnostics import TurnDetail, TurnDiagnostics
from models.keys import turn_stream_key
from models.turn import TurnResult
from stream_relay.operations import end_abandoned_stream, last_event_times
from workflows import search_attributes, turn_client
from workflows.copilot_turn import CopilotTurnWorkflow, turn_workflow_id
from workflows.subscription import SubscriptionWorkflow

log = logging.getLogger(__name__)
T = TypeVar("T")

TURNS = f"WorkflowType = '{CopilotTurnWorkflow.__name__}'"
RUNNING = f"{TURNS} AND ExecutionStatus = 'Running'"
# A turn failed when it says so (it ended its own run as failed), or when its run did not end by
# itself at all (a workflow failure, a timeout, a termination).
FAILED = (f"({search_attributes.TURN_STATUS.name} = 'failed' "
          "OR ExecutionStatus IN ('Failed', 'TimedOut', 'Terminated'))")
COMPLETED = (f"{search_attributes.TURN_STATUS.name} = 'completed' "
             "AND ExecutionStatus IN ('Completed', 'ContinuedAsNew')")
SUB_SESSION = f"{search_attributes.KIND.name} = 'sub_session'"
SUBSCRIPTIONS_RUNNING = f"WorkflowType = '{SubscriptionWorkflow.__name__}' AND ExecutionStatus = 'Running'"

RUNNING_SCAN_LIMIT = 5000
SUBSCRIPTION_SCAN_LIMIT = 1000
QUERY_CONCURRENCY = 20
QUERY_TIMEOUT = timedelta(seconds=2)
TERMINATED_TEXT = "This turn was ended by an operator."


@dataclass(frozen=True)
class Thresholds:
    long_running_seconds: float
    stuck_seconds: float


def _moment(value: datetime) -> str:
    return "'" + value.astimezone(timezone.utc).isoformat() + "'"


def _literal(value: str) -> str:
    """A visibility-query string literal (the value may hold quotes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def closed_since(moment: datetime) -> str:
    return f"{TURNS} AND CloseTime > {_moment(moment)}"


def started_before(moment: datetime) -> str:
    return f"{RUNNING} AND StartTime < {_moment(moment)}"


async def _bounded(items: Iterable[T], call: Callable[[T], Awaitable[None]], concurrency: int) -> None:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(item: T) -> None:
        async with semaphore:
            await call(item)

    await asyncio.gather(*(one(item) for item in items))


async def _title(execution: WorkflowExecution) -> Optional[str]:
    try:
        title = await execution.memo_value("title", None)
    except Exception:  # a memo this code cannot decode names no title; the row still shows
        return None
    return title if isinstance(title, str) else None


async def _detail(execution: WorkflowExecution) -> TurnDetail:
    attributes = execution.typed_search_attributes
    return TurnDetail(
        session_id=execution.id.removeprefix(turn_workflow_id("")),
        user_id=attributes.get(search_attributes.USER_ID) or "",
        kind=attributes.get(search_attributes.KIND) or "turn",
        title=await _title(execution), turn_id=execution.run_id,
        status=execution.status.name.lower() if execution.status else "unknown",
        turn_status=attributes.get(search_attributes.TURN_STATUS),
        started_at=execution.start_time, closed_at=execution.close_time,
    )


async def count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


async def page(client: Client, query: str, limit: int, offset: int) -> list[TurnDetail]:
    """One page of a listing, newest first (the store's order). Visibility pages by token, so an
    offset is walked through: a deep page costs its offset."""
    wanted = offset + limit
    executions = [e async for e in client.list_workflows(query, limit=wanted, page_size=min(wanted, 1000))]
    return [await _detail(e) for e in executions[offset:]]


async def _all(client: Client, query: str, cap: int) -> list[TurnDetail]:
    return [await _detail(e) async for e in client.list_workflows(query, limit=cap, page_size=min(cap, 1000))]


async def with_live_state(client: Client, turns: Sequence[TurnDetail]) -> None:
    """Each running turn's round and buffer, from its own `state` query; a turn that does not
    answer in time (no worker runs it, its workflow task keeps failing) keeps them null."""
    async def query(turn: TurnDetail) -> None:
        handle = client.get_workflow_handle(turn_workflow_id(turn.session_id), run_id=turn.turn_id)
        try:
            state = await handle.query(CopilotTurnWorkflow.state, rpc_timeout=QUERY_TIMEOUT)
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
            return
        turn.round, turn.buffer_length = state.round, state.buffer_length

    await _bounded(turns, query, QUERY_CONCURRENCY)


async def with_last_events(redis: Redis, turns: Sequence[TurnDetail]) -> bool:
    """When each turn's stream last moved; False when Redis did not answer."""
    try:
        times = await last_event_times(redis, [turn_stream_key(t.session_id, t.turn_id) for t in turns])
    except RedisError as failure:
        log.warning("turn streams unreadable for diagnostics: %s", type(failure).__name__)
        return False
    for turn, moment in zip(turns, times):
        turn.last_event_at = moment
    return True


def is_stuck(turn: TurnDetail, now: datetime, stuck_seconds: float) -> bool:
    """Running with no stream event (or, with no stream yet, no start) for longer than the threshold."""
    quiet_since = turn.last_event_at or turn.started_at
    return (now - quiet_since).total_seconds() > stuck_seconds


def _close_reason(event) -> tuple[Optional[str], Optional[int]]:
    """The error text (and rounds) a run's close event records, for those that are not results."""
    if event.HasField("workflow_execution_failed_event_attributes"):
        return event.workflow_execution_failed_event_attributes.failure.message or "the workflow failed", None
    if event.HasField("workflow_execution_terminated_event_attributes"):
        reason = event.workflow_execution_terminated_event_attributes.reason
        return f"terminated: {reason}" if reason else "terminated", None
    if event.HasField("workflow_execution_timed_out_event_attributes"):
        return "the workflow timed out", None
    if event.HasField("workflow_execution_continued_as_new_event_attributes"):
        return "failed; its queued follow-ups went on in the next turn", None
    return None, None


async def with_close_details(client: Client, turns: Sequence[TurnDetail]) -> None:
    """The error each closed turn ended with, from its run's close event (one event per run)."""
    async def read(turn: TurnDetail) -> None:
        handle = client.get_workflow_handle(turn_workflow_id(turn.session_id), run_id=turn.turn_id)
        try:
            async for event in handle.fetch_history_events(
                    event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT, rpc_timeout=QUERY_TIMEOUT):
                if event.HasField("workflow_execution_completed_event_attributes"):
                    payloads = event.workflow_execution_completed_event_attributes.result.payloads
                    [result] = await client.data_converter.decode(payloads, [TurnResult])
                    turn.error, turn.round = result.error, result.rounds
                else:
                    turn.error, _ = _close_reason(event)
        except (RPCError, ValueError, TypeError) as failure:  # gone from retention, or a result of another shape
            log.warning("close event of turn %s unreadable: %s", turn.turn_id, type(failure).__name__)

    await _bounded(turns, read, QUERY_CONCURRENCY)


async def _pending_subscription_changes(client: Client) -> tuple[int, int]:
    """(with a pending change, checked) over the running subscription workflows, each queried."""
    executions = [e async for e in client.list_workflows(SUBSCRIPTIONS_RUNNING, limit=SUBSCRIPTION_SCAN_LIMIT)]
    pending = 0

    async def query(execution: WorkflowExecution) -> None:
        nonlocal pending
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        try:
            view = await handle.query(SubscriptionWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
            return
        pending += view.pending_tier is not None

    await _bounded(executions, query, QUERY_CONCURRENCY)
    return pending, len(executions)


async def summary(client: Client, redis: Redis, now: datetime, thresholds: Thresholds) -> TurnDiagnostics:
    hour, day = now - timedelta(hours=1), now - timedelta(hours=24)
    (running, sub_sessions, long_running, long_running_24h, failed_1h, failed_24h, completed_1h, completed_24h,
     closed_24h, subscriptions_running) = await asyncio.gather(*(count(client, query) for query in (
        RUNNING, f"{RUNNING} AND {SUB_SESSION}", started_before(now - timedelta(seconds=thresholds.long_running_seconds)),
        started_before(day), f"{closed_since(hour)} AND {FAILED}", f"{closed_since(day)} AND {FAILED}",
        f"{closed_since(hour)} AND {COMPLETED}", f"{closed_since(day)} AND {COMPLETED}", closed_since(day),
        SUBSCRIPTIONS_RUNNING)))
    turns = await _all(client, RUNNING, RUNNING_SCAN_LIMIT)
    (_, streams_read, (pending_changes, subscriptions_checked)) = await asyncio.gather(
        with_live_state(client, turns), with_last_events(redis, turns), _pending_subscription_changes(client))
    oldest = min((t.started_at for t in turns), default=None)
    return TurnDiagnostics(
        running_turns=running, running_sub_sessions=sub_sessions,
        queued_follow_ups=sum(t.buffer_length or 0 for t in turns),
        failed_1h=failed_1h, failed_24h=failed_24h, failure_rate_24h=failed_24h / closed_24h if closed_24h else 0.0,
        completed_1h=completed_1h, completed_24h=completed_24h, throughput_per_hour=completed_24h / 24,
        long_running=long_running, long_running_24h=long_running_24h,
        long_running_after_seconds=thresholds.long_running_seconds,
        oldest_running_hours=(now - oldest).total_seconds() / 3600 if oldest else None,
        stuck=sum(is_stuck(t, now, thresholds.stuck_seconds) for t in turns) if streams_read else None,
        stuck_after_seconds=thresholds.stuck_seconds,
        unanswered=sum(t.round is None for t in turns),
        subscriptions_with_pending_change=pending_changes, subscriptions_checked=subscriptions_checked,
        partial=running > len(turns) or subscriptions_running > subscriptions_checked,
        timestamp=now,
    )


async def stuck_turns(client: Client, redis: Redis, now: datetime, stuck_seconds: float) -> Optional[list[TurnDetail]]:
    """Every stuck turn, the longest quiet first; None when Redis did not answer."""
    turns = await _all(client, RUNNING, RUNNING_SCAN_LIMIT)
    if not await with_last_events(redis, turns):
        return None
    stuck = [t for t in turns if is_stuck(t, now, stuck_seconds)]
    return sorted(stuck, key=lambda t: t.last_event_at or t.started_at)


async def long_running_session_ids(client: Client, now: datetime, seconds: float) -> list[str]:
    turns = await _all(client, started_before(now - timedelta(seconds=seconds)), RUNNING_SCAN_LIMIT)
    return list(dict.fromkeys(t.session_id for t in turns))


async def user_running_turns(client: Client, user_id: str, cap: int = 100) -> list[TurnDetail]:
    turns = await _all(client, f"{RUNNING} AND {search_attributes.USER_ID.name} = {_literal(user_id)}", cap)
    await with_live_state(client, turns)
    return turns


async def stop_turns(client: Client, session_ids: Sequence[str], concurrency: int) -> dict[str, str]:
    """Stops each session's turn, `concurrency` at a time, each waiting for its turn to close:
    stopped, not_running (it had ended), stop_pending (not closed in time; the stop stays asked)
    or error (Temporal refused)."""
    outcomes: dict[str, str] = {}

    async def stop(session_id: str) -> None:
        try:
            outcomes[session_id] = "stopped" if await turn_client.stop_turn(client, session_id) else "not_running"
        except turn_client.StopPending:
            outcomes[session_id] = "stop_pending"
        except RPCError as failure:
            log.warning("admin stop of session %s failed: %s", session_id, failure.status)
            outcomes[session_id] = "error"

    requested = list(dict.fromkeys(session_ids))
    await _bounded(requested, stop, concurrency)
    return {session_id: outcomes[session_id] for session_id in requested}


async def current_run(client: Client, session_id: str) -> Optional[TurnDetail]:
    """The session's latest turn run, running or not; None when it never had one."""
    try:
        description = await client.get_workflow_handle(turn_workflow_id(session_id)).describe()
    except RPCError as failure:
        if failure.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return await _detail(description)


async def terminate_turn(client: Client, redis: Redis, turn: TurnDetail, reason: str, retention_seconds: int) -> None:
    """Terminates the turn run and ends its stream for whoever reads it (the turn cannot)."""
    handle = client.get_workflow_handle(turn_workflow_id(turn.session_id), run_id=turn.turn_id)
    await handle.terminate(reason=reason)
    try:
        await end_abandoned_stream(redis, turn_stream_key(turn.session_id, turn.turn_id), retention_seconds,
                                   TERMINATED_TEXT)
    except RedisError as failure:  # the turn is ended; a reader stops at its idle timeout
        log.warning("stream of terminated turn %s not closed: %s", turn.turn_id, type(failure).__name__)
