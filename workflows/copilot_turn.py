"""CopilotTurnWorkflow: one copilot turn of one session, `copilot-turn/{session_id}`.

Because the workflow id is the session's, Temporal itself answers "is a turn running for this
session?" atomically: a message sent while a turn runs reaches the running turn's update handler
instead of starting a second turn. There is no lock to acquire, renew or leak.
"""

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Awaitable, Optional, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    FailureError,
    TimeoutType,
    WorkflowAlreadyStartedError,
)
from temporalio.exceptions import (
    TimeoutError as ActivityTimeout,
)
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities import interfaces as act
    from models import keys, ui_stream
    from models.turn import (
        ACTIVE_STATUSES,
        ApprovalAnswer,
        ApprovalRequest,
        BeginTurnRequest,
        IncomingMessage,
        NewMessageRow,
        OpenStreamRequest,
        PrepareSubSessionRequest,
        PublishRequest,
        QueueInSessionRequest,
        RecordMessagesRequest,
        RecordUsageRequest,
        RoundRequest,
        RoundResult,
        SpendCheck,
        SpendCheckRequest,
        StopRequest,
        SubmitResult,
        ToolCall,
        ToolDecision,
        ToolRequest,
        ToolResult,
        TurnInput,
        TurnResult,
        TurnState,
        TurnStatus,
        Usage,
        approval_id_for,
        parsed_arguments,
        timeout_message,
    )
    from workflows import search_attributes

EMPTY_ANSWER_TEXT = "I've finished working on this; the tool results are above."
# Markers of workflow changes that issue new commands: old histories replay without them.
SPEND_CHECK_PATCH = "spend-checked-before-first-round"
STOP_SUB_SESSIONS_PATCH = "stop-reaches-sub-sessions"
ROUND_CAP_TEXT = "I stopped here because this turn reached its step limit. Send a message to continue."
T = TypeVar("T")
# The tools every turn could use before the allowed names travelled in its input: what a turn
# started by an older deploy (whose input has no `allowed_tools`) resolves its filter against.
# Frozen, so such a turn replays the same commands whatever the registry holds today.
TOOLS_BEFORE_ALLOWED_TOOLS_INPUT = ("get_current_time", "bash_exec", "write_workspace_file", "read_workspace_file",
                                    "list_workspace_files", "run_sub_session", "get_sub_session_result")
SUB_SESSION_TOOL = "run_sub_session"
SUB_SESSION_RESULT_TOOL = "get_sub_session_result"
# Bookkeeping (rows, parts, usage, the stop record) is retried a bounded number of times: a write
# that keeps failing (a row the database refuses, a dropped table, a full disk) ends the turn as
# failed instead of holding the session in retries for ever.
BOOKKEEPING_ATTEMPTS = 4
QUICK = dict(start_to_close_timeout=timedelta(seconds=30), retry_policy=RetryPolicy(
    maximum_interval=timedelta(seconds=5), maximum_attempts=BOOKKEEPING_ATTEMPTS))
# Short idempotent writes (rows keyed per turn, parts deduplicated) run as local activities: in the
# worker that runs the workflow task, with no round trip through the server's task queue. That
# is most of the time between `POST .../stream` and the model call, and between two rounds.
# While a local activity runs, the worker holds the workflow task open, and nothing reaches the
# workflow (a Stop, a follow-up, a query) until the task completes or heartbeats: so each
# back-off between attempts is a workflow timer (local_retry_threshold), and the task heartbeats
# often (TURN_TASK_TIMEOUT). A write normally takes milliseconds; one that hangs ends at 5 s.
LOCAL = dict(start_to_close_timeout=timedelta(seconds=5), local_retry_threshold=timedelta(milliseconds=1),
             retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=5), maximum_attempts=BOOKKEEPING_ATTEMPTS))
# The worker heartbeats a workflow task held open by a local activity at 80% of this, which is
# how long a Stop can wait behind a slow write at most.
TURN_TASK_TIMEOUT = timedelta(seconds=4)
BOOKKEEPING_FAILED_TEXT = ("This turn could not be saved and has ended; part of it may be missing from the "
                           "conversation. Please send your message again in a moment.")
# A tool call is retried only when its attempt was lost (a dead worker, a missed heartbeat), and
# never past the call's deadline (schedule-to-close): the tool cap holds across retries. Twice
# at most: a call whose attempts both took their worker down (killed it, or ran it out of memory)
# is a poison pill that durable execution would otherwise replay onto every worker in turn.
TOOL_ATTEMPTS = 2
TOOL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                         maximum_interval=timedelta(seconds=10), maximum_attempts=TOOL_ATTEMPTS)


@dataclass
class _Approval:
    request: ApprovalRequest
    decision: Optional[ToolDecision] = None
    closed: Optional[str] = None  # why it can no longer be decided (stopped, timed out)

    @property
    def waiting(self) -> bool:
        return self.decision is None and self.closed is None


# Turn metrics, through Temporal's workflow metric meter: recorded by the worker running the turn
# and skipped on replay, so a turn is counted once however often it replays. They reach /metrics
# with the SDK's own (observability/metrics.py lists them as WORKFLOW_METRICS).
TURN_DURATION_METRIC = "copilot_turn_duration"  # seconds, exported as copilot_turn_duration_seconds


def _count_turn(event: str, kind: str) -> None:
    """`copilot_turns_{started,completed,failed,stopped}_total` by kind (`turn`, `sub_session`)."""
    workflow.metric_meter().create_counter(f"copilot_turns_{event}", f"Turns {event}, by kind.").add(
        1, {"kind": kind})


class TurnStopped(Exception):
    """Raised inside the workflow when Stop wins the race against the work in flight."""


def turn_workflow_id(session_id: str) -> str:
    return f"copilot-turn/{session_id}"


def tool_failure(name: str, failure: ActivityError, cap: float) -> str:
    """The error a tool call gets when its activity did not return a result in time."""
    if isinstance(failure.cause, ActivityTimeout) and failure.cause.type == TimeoutType.HEARTBEAT:
        return (f"tool_failed: '{name}' was attempted {TOOL_ATTEMPTS} times and each time the worker running it "
                "was lost (it crashed or was killed, for instance for using too much memory); it is not tried "
                "again. Try a smaller or different approach.")
    if isinstance(failure.cause, ActivityTimeout):
        return f"tool_timeout: {timeout_message(name, cap)}"
    if isinstance(failure.cause, ApplicationError) and failure.cause.type == "ToolRefusal":
        return failure.cause.message
    return f"tool_failed: '{name}' could not be completed; try again or use another approach."


def failure_message(error: ActivityError) -> str:
    cause = error.cause
    detail = cause.message if isinstance(cause, ApplicationError) else "the model call did not complete"
    return f"{detail} Your message is saved; please try again in a moment."


@workflow.defn
class CopilotTurnWorkflow:
    @workflow.init
    def __init__(self, input: TurnInput) -> None:
        self._input = input
        # Messages that open this turn, and follow-ups queued while it runs.
        self._opening: list[IncomingMessage] = list(input.carried_messages)
        self._pending: list[IncomingMessage] = []
        self._claimed = bool(input.carried_messages)
        self._status: TurnStatus = "running"
        self._round = 0
        self._stop_requested = False
        self._closed = False
        # Tool calls of the current round that have no recorded result yet, and the results
        # of those that finished (a Stop keeps them: only calls without one are "stopped").
        self._open_calls: list[ToolCall] = []
        self._round_results: dict[str, ToolResult] = {}
        self._tool_calls: list[ToolCall] = []
        # Every sub-session this turn handed work to (started, or queued into): Stop reaches them.
        self._sub_sessions: list[str] = []
        self._sub_session_calls = 0
        self._approvals: dict[str, _Approval] = {}
        self._unrecorded_opening: list[IncomingMessage] = []
        self._started_at = workflow.now()
        self._allowed_tools = (list(input.allowed_tools) if input.allowed_tools is not None
                               else input.tool_filter.allowed(TOOLS_BEFORE_ALLOWED_TOOLS_INPUT))

    @property
    def _turn_id(self) -> str:
        return workflow.info().run_id

    @workflow.update
    def submit_message(self, message: IncomingMessage) -> SubmitResult:
        queued = self._claimed
        self._claimed = True
        (self._pending if queued else self._opening).append(message)
        return SubmitResult(
            turn_id=self._turn_id, message_id=message.message_id, queued=queued,
            buffer_length=len(self._pending), max_buffer_length=self._input.max_buffer_length,
        )

    @submit_message.validator
    def _validate_message(self, message: IncomingMessage) -> None:
        # Refused here, before the update is accepted, so nothing is half-written.
        if not message.content.strip():
            raise ValueError("The message is empty.")
        if len(message.content) > self._input.max_message_chars:
            raise ValueError(f"The message is longer than {self._input.max_message_chars} characters.")
        if self._claimed and self._status not in ACTIVE_STATUSES:
            # The turn is closing its stream; the caller retries and starts the next turn.
            raise ValueError("turn_closing: the previous turn is finishing.")
        if self._claimed and len(self._pending) >= self._input.max_buffer_length:
            raise ValueError(f"buffer_full: {self._input.max_buffer_length} messages are already queued for this session.")

    @workflow.query
    def state(self) -> TurnState:
        return TurnState(
            turn_id=self._turn_id, status=self._status, round=self._round, buffer_length=len(self._pending),
            max_buffer_length=self._input.max_buffer_length, pending=list(self._pending),
            awaiting_approval=[a.request for a in self._approvals.values() if a.waiting],
        )

    @workflow.update
    def decide_tool_call(self, decision: ToolDecision) -> ApprovalAnswer:
        """A person's yes or no to a call waiting for approval. Giving the same answer again
        changes nothing (`already`); the waiting call runs, or is declined, once."""
        approval = self._approvals[decision.approval_id]
        status = "approved" if decision.approved else "denied"
        if approval.decision is not None:
            return ApprovalAnswer(approval_id=decision.approval_id, status=status, already=True)
        approval.decision = decision
        return ApprovalAnswer(approval_id=decision.approval_id, status=status)

    @decide_tool_call.validator
    def _validate_decision(self, decision: ToolDecision) -> None:
        approval = self._approvals.get(decision.approval_id)
        if approval is None:
            raise ValueError("unknown_approval: no such call waits for approval in this turn.")
        if approval.closed:
            raise ValueError(f"approval_closed: {approval.closed}")
        if approval.decision is not None and approval.decision.approved != decision.approved:
            earlier = "approved" if approval.decision.approved else "denied"
            raise ValueError(f"already_decided: this call was already {earlier}.")

    @workflow.update
    async def stop(self) -> bool:
        """Stops the turn: returns once it has recorded what it had and closed its stream.
        True when a running turn was stopped, False when it had already finished."""
        if self._status not in ACTIVE_STATUSES:
            return False
        self._stop_requested = True
        await workflow.wait_condition(lambda: self._closed)
        return self._status == "stopped"

    @workflow.signal
    def stop_without_waiting(self) -> None:
        """Stop, from a caller that does not wait for the turn to close: a parent turn that was
        stopped, a session being deleted."""
        if self._status in ACTIVE_STATUSES:
            self._stop_requested = True

    @workflow.run
    async def run(self, input: TurnInput) -> TurnResult:
        stream_key = keys.turn_stream_key(input.session_id, self._turn_id)
        if not await self._wait_for_opening_message():
            return TurnResult(turn_id=self._turn_id, status="completed", text="", rounds=0, usage=Usage())
        opening, self._opening = self._opening, []
        self._started_at = workflow.now()
        _count_turn("started", input.kind)
        try:
            return await self._run_turn(input, stream_key, opening)
        except CancelledError:
            raise
        except FailureError as failure:  # a local activity's last failure arrives unwrapped
            return await self._end_after_bookkeeping_failure(input, stream_key, failure)

    async def _end_after_bookkeeping_failure(self, input: TurnInput, stream_key: str,
                                             failure: FailureError) -> TurnResult:
        """A write kept failing past its retries: the turn ends as failed, says so on its stream
        if the stream still takes parts, and the session is idle again."""
        # Names only: a failure's message can hold the row it could not write.
        cause = failure.cause if isinstance(failure, ActivityError) else failure
        workflow.logger.error("turn of session %s: %s kept failing (%s); the turn ends as failed", input.session_id,
                              getattr(failure, "activity_type", "a write"), type(cause).__name__)
        self._set_status("failed")
        try:
            await self._publish(stream_key, keys.FINISH_PART, [ui_stream.error(BOOKKEEPING_FAILED_TEXT),
                                                               ui_stream.finish()],
                                end_stream=True, continues=bool(self._pending))
        except FailureError:
            pass  # the stream is what failed: a reader ends at its idle timeout
        return await self._end(input, TurnResult(
            turn_id=self._turn_id, status="failed", text="", rounds=self._round, usage=Usage(),
            tool_calls=self._tool_calls, error=BOOKKEEPING_FAILED_TEXT))

    async def _run_turn(self, input: TurnInput, stream_key: str, opening: list[IncomingMessage]) -> TurnResult:
        usage, final_text, closing_text, error = Usage(), "", None, None
        self._unrecorded_opening = opening  # until begin_turn has stored them: a Stop then stores them
        try:
            await self._unless_stopped(asyncio.gather(
                workflow.execute_local_activity(
                    act.open_stream,
                    OpenStreamRequest(session_id=input.session_id, turn_id=self._turn_id, stream_key=stream_key),
                    **LOCAL,
                ),
                workflow.execute_local_activity(
                    act.begin_turn,
                    BeginTurnRequest(session_id=input.session_id, user_id=input.user_id, turn_id=self._turn_id,
                                     stream_key=stream_key, messages=opening), **LOCAL,
                ),
            ))
        except TurnStopped:
            return await self._stopped(input, stream_key, usage)
        self._unrecorded_opening = []
        # A fresh turn's first round was checked by the API; a sub-session's or an auto-continued
        # turn's was not.
        spend = await self._check_spend() if input.carried_messages and workflow.patched(SPEND_CHECK_PATCH) else None
        try:
            for round_index in range(input.max_rounds):
                if spend is not None and spend.exhausted_window:
                    final_text = closing_text = spend_limit_text(spend)
                    await self._record([NewMessageRow(key=keys.SPEND_LIMIT_ROW, role="assistant", content=final_text)])
                    break
                self._round = round_index + 1
                try:
                    result = await self._unless_stopped(self._model_round(stream_key, round_index))
                except ActivityError as failure:
                    error = failure_message(failure)
                    break
                usage += result.usage
                if not result.tool_calls and not result.text.strip() and round_index > 0:
                    # Tools ran, then the model only thought: close with words, never with silence.
                    result = result.model_copy(update={"text": EMPTY_ANSWER_TEXT})
                    closing_text = EMPTY_ANSWER_TEXT
                _, spend = await self._unless_stopped(asyncio.gather(self._record(round_messages(round_index, result)),
                                                                     self._record_usage(round_index, result)))
                if not result.tool_calls:
                    final_text = result.text
                    break
                self._open_calls, self._round_results = list(result.tool_calls), {}
                self._tool_calls += result.tool_calls
                cap = input.max_tool_calls_per_round or len(result.tool_calls)
                tool_results = await self._unless_stopped(asyncio.gather(*(
                    self._run_tool(stream_key, call) for call in result.tool_calls[:cap]
                )))
                tool_results += [await self._refuse_tool_call(stream_key, call, cap) for call in result.tool_calls[cap:]]
                tool_rows = [NewMessageRow(key=keys.tool_row(r.tool_call_id), role="tool", content=r.model_content(),
                                           tool_call_id=r.tool_call_id) for r in tool_results]
                await self._record(tool_rows)
                self._open_calls = []
                await self._publish(stream_key, keys.finish_step_part(round_index), [ui_stream.finish_step()])
                await self._deliver_pending(stream_key, round_index)
            else:
                final_text = closing_text = ROUND_CAP_TEXT
                await self._record([NewMessageRow(key=keys.ROUND_CAP_ROW, role="assistant", content=ROUND_CAP_TEXT)])
        except TurnStopped:
            return await self._stopped(input, stream_key, usage)

        # The outcome is known before the stream closes, so a reader that saw `finish` never
        # finds the session still "running".
        self._set_status("failed" if error else "completed")
        await self._finish(stream_key, closing_text, error)
        return await self._end(input, TurnResult(
            turn_id=self._turn_id, status=self._status, text=final_text, rounds=self._round, usage=usage,
            tool_calls=self._tool_calls, error=error))

    async def _stopped(self, input: TurnInput, stream_key: str, usage: Usage) -> TurnResult:
        self._set_status("stopped")
        if self._sub_sessions and workflow.patched(STOP_SUB_SESSIONS_PATCH):
            await self._stop_sub_sessions()
        await self._record_stop(stream_key)
        return await self._end(input, TurnResult(
            turn_id=self._turn_id, status="stopped", text="", rounds=self._round, usage=usage))

    def _set_status(self, status: TurnStatus) -> None:
        self._status = status
        workflow.upsert_search_attributes([search_attributes.TURN_STATUS.value_set(status)])

    async def _end(self, input: TurnInput, result: TurnResult) -> TurnResult:
        """Ends the run; follow-ups still queued open the next turn at once (auto-continue),
        through continue-as-new, so the id is never released and no message can race."""
        if result.status in ("completed", "failed", "stopped"):
            _count_turn(result.status, input.kind)
            seconds = (workflow.now() - self._started_at).total_seconds()
            workflow.metric_meter().create_histogram_float(
                TURN_DURATION_METRIC, "From a turn's first message to its end, by kind and status.", "s").record(
                max(seconds, 0.0), {"kind": input.kind, "status": result.status})
        self._closed = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._pending:
            # The next run starts running: its status must not be copied from this one's end,
            # or a count of running turns (the per-user limit) would miss it.
            workflow.continue_as_new(input.model_copy(update={"carried_messages": self._pending}),
                                     search_attributes=workflow.info().typed_search_attributes.updated(
                                         search_attributes.TURN_STATUS.value_set("running")))
        return result

    async def _unless_stopped(self, awaitable: Awaitable[T]) -> T:
        """Awaits the activity work, unless Stop comes first: then it is cancelled and not
        waited for (a tool that ignores cancellation cannot hold the session)."""
        task = asyncio.ensure_future(awaitable)
        await workflow.wait_condition(lambda: task.done() or self._stop_requested)
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise TurnStopped()

    async def _run_tool(self, stream_key: str, call: ToolCall) -> ToolResult:
        """One tool call, never waited for past the tool cap: whatever happens to its activity
        (a stuck tool, a dead worker, retries spent), the call ends with a result that the model
        reads and the stream shows, and the turn goes on."""
        if call.name in self._input.approval_required_tools and call.name in self._allowed_tools:
            refusal = await self._approval_of(stream_key, call)
            if refusal is not None:
                result = ToolResult(tool_call_id=call.id, name=call.name, error=refusal, published=False)
                self._round_results[call.id] = result
                await self._publish(stream_key, keys.tool_output_part(call.id), [result.stream_part()])
                return result
        cap = self._input.tool_timeout_seconds
        deadline = workflow.now() + timedelta(seconds=cap)  # the cap counts from the approval
        try:
            if call.name == SUB_SESSION_TOOL and call.name in self._allowed_tools:
                result = await self._run_sub_session(stream_key, call, deadline)
            else:
                result = await self._tool_activity(stream_key, call, self._allowed_tools, deadline)
        except ActivityError as failure:
            if isinstance(failure.cause, CancelledError):  # Stop: record_stop gives it its result
                raise
            workflow.logger.warning("tool call %s (%s) of session %s ended without a result: %s", call.id,
                                    call.name, self._input.session_id, type(failure.cause).__name__)
            result = ToolResult(tool_call_id=call.id, name=call.name, error=tool_failure(call.name, failure, cap),
                                published=False)
        self._round_results[call.id] = result
        if not result.published:
            await self._publish(stream_key, keys.tool_output_part(call.id), [result.stream_part()])
        return result

    async def _approval_of(self, stream_key: str, call: ToolCall) -> Optional[str]:
        """Waits, holding no worker, for a person to approve the call: None once approved, else
        the result the model reads (declined, with the reason; or not answered in time)."""
        request = ApprovalRequest(approval_id=approval_id_for(call.id), tool_call_id=call.id, tool_name=call.name,
                                  input=parsed_arguments(call.arguments))
        approval = self._approvals.setdefault(request.approval_id, _Approval(request))
        self._set_status("awaiting_approval")
        await self._publish(stream_key, keys.approval_request_part(call.id), [
            ui_stream.data("tool-approval-request", {"approvalId": request.approval_id, "toolCallId": call.id,
                                                     "toolName": call.name, "input": request.input})])
        timeout = self._input.approval_timeout_seconds
        try:
            await workflow.wait_condition(lambda: approval.decision is not None, timeout=timedelta(seconds=timeout))
        except asyncio.TimeoutError:
            approval.closed = "the call was not approved in time and was not run."
            return (f"approval_timed_out: no one approved '{call.name}' within {_duration(timeout)}, so it was "
                    "not run (counted as declined).")
        except CancelledError:
            approval.closed = "the turn was stopped."
            raise
        finally:
            if self._status == "awaiting_approval" and not any(a.waiting for a in self._approvals.values()):
                self._set_status("running")
        if approval.decision.approved:
            return None
        reason = f" Their reason: {approval.decision.reason}" if approval.decision.reason else ""
        return f"approval_denied: the person declined this call of '{call.name}', so it was not run.{reason}"

    async def _refuse_tool_call(self, stream_key: str, call: ToolCall, cap: int) -> ToolResult:
        """A call past the round's limit: not run, answered so the model can plan fewer."""
        result = ToolResult(tool_call_id=call.id, name=call.name, published=False,
                            error=f"too_many_tool_calls: a round may run at most {cap} tool calls; this one was "
                                  "not run. Call fewer at once.")
        self._round_results[call.id] = result
        await self._publish(stream_key, keys.tool_output_part(call.id), [result.stream_part()])
        return result

    async def _tool_activity(self, stream_key: str, call: ToolCall, allowed_tools: list[str],
                             deadline: datetime) -> ToolResult:
        return await workflow.execute_activity(
            act.run_tool,
            ToolRequest(session_id=self._input.session_id, user_id=self._input.user_id, turn_id=self._turn_id,
                        stream_key=stream_key, call=call, allowed_tools=allowed_tools,
                        timeout_seconds=self._input.tool_timeout_seconds, deadline=deadline,
                        dry_run=self._input.dry_run, builder_graph_id=self._input.builder_graph_id),
            schedule_to_close_timeout=self._time_left(deadline),
            heartbeat_timeout=timedelta(seconds=self._input.tool_heartbeat_timeout_seconds),
            retry_policy=TOOL_RETRY,
        )

    @staticmethod
    def _time_left(deadline: datetime) -> timedelta:
        return max(deadline - workflow.now(), timedelta(seconds=1))

    async def _stop_sub_sessions(self) -> None:
        """Asks every sub-session this turn handed work to to stop (each stops its own in turn);
        one that has finished, or was deleted, has nothing to stop."""
        signals = [workflow.get_external_workflow_handle(turn_workflow_id(sub_id)).signal(
            CopilotTurnWorkflow.stop_without_waiting) for sub_id in dict.fromkeys(self._sub_sessions)]
        await asyncio.gather(*signals, return_exceptions=True)  # a FailureError each for those idle

    async def _run_sub_session(self, stream_key: str, call: ToolCall, deadline: datetime) -> ToolResult:
        """Starts the sub's turn as a child workflow that outlives this turn, then waits for it
        like `get_sub_session_result` does (the same tool, on the sub's id)."""
        cap = self._input.max_sub_sessions_per_turn
        if cap is not None:
            if self._sub_session_calls >= cap:
                return ToolResult(tool_call_id=call.id, name=call.name, published=False,
                                  error=f"too_many_sub_sessions: a turn may start at most {cap} sub-sessions; "
                                        "do the rest of the work here.")
            self._sub_session_calls += 1
        prepared = await workflow.execute_activity(
            act.prepare_sub_session,
            PrepareSubSessionRequest(parent_session_id=self._input.session_id, user_id=self._input.user_id,
                                     turn_id=self._turn_id, call=call, parent_allowed_tools=self._allowed_tools,
                                     parent_depth=self._input.sub_session_depth, dry_run=self._input.dry_run,
                                     approval_required_tools=self._input.approval_required_tools,

                                     builder_graph_id=self._input.builder_graph_id),
            schedule_to_close_timeout=self._time_left(deadline), **QUICK,
        )
        if prepared.error:
            return ToolResult(tool_call_id=call.id, name=call.name, error=prepared.error, published=False)
        sub_id = prepared.sub_session_id
        self._sub_sessions.append(sub_id)
        child_input = prepared.child_input.model_copy(update={"carried_messages": [prepared.message]})
        try:
            await workflow.start_child_workflow(
                CopilotTurnWorkflow.run, child_input, id=turn_workflow_id(sub_id), task_timeout=TURN_TASK_TIMEOUT,
                parent_close_policy=ParentClosePolicy.ABANDON, memo={"title": prepared.title},
                search_attributes=TypedSearchAttributes([
                    SearchAttributePair(search_attributes.USER_ID, self._input.user_id),
                    SearchAttributePair(search_attributes.SESSION_ID, sub_id),
                    SearchAttributePair(search_attributes.TURN_STATUS, "running"),
                    SearchAttributePair(search_attributes.KIND, "sub_session"),
                ]),
            )
        except WorkflowAlreadyStartedError:
            submitted = await workflow.execute_activity(
                act.queue_in_session,
                QueueInSessionRequest(session_id=sub_id, user_id=self._input.user_id, message=prepared.message,
                                      title=prepared.title, parent_allowed_tools=self._allowed_tools,
                                      depth=self._input.sub_session_depth + 1,
                                      builder_graph_id=self._input.builder_graph_id),
                schedule_to_close_timeout=self._time_left(deadline), **QUICK,
            )
            output = {"status": "queued" if submitted.queued else "running", "sub_autopilot_session_id": sub_id,
                      "link": f"/copilot?sessionId={sub_id}", "buffer_length": submitted.buffer_length}
            return ToolResult(tool_call_id=call.id, name=call.name, output=output, published=False)
        # The wait is `get_sub_session_result` on the sub, under this call's deadline: it answers
        # `running` before the tool cap, never `tool_timeout`.
        wait = ToolCall(id=call.id, name=SUB_SESSION_RESULT_TOOL, arguments=json.dumps(
            {"sub_session_id": sub_id, "wait_if_running": prepared.wait_seconds}))
        result = await self._tool_activity(stream_key, wait, [SUB_SESSION_RESULT_TOOL], deadline)
        return result.model_copy(update={"name": call.name})

    async def _deliver_pending(self, stream_key: str, round_index: int) -> None:
        """Mid-turn delivery: queued follow-ups join the conversation at this round boundary,
        stored right after the tool results they followed (the next round reads them there)."""
        if not self._pending:
            return
        delivered, self._pending = self._pending, []
        await self._record([m.row() for m in delivered])
        await self._publish(stream_key, keys.pending_delivered_part(round_index), [
            ui_stream.data("pending-delivered", {"messageIds": [m.message_id for m in delivered]})])

    async def _record_stop(self, stream_key: str) -> None:
        await workflow.execute_activity(
            act.record_stop,
            StopRequest(session_id=self._input.session_id, turn_id=self._turn_id, stream_key=stream_key,
                        round_index=self._round - 1,
                        open_tool_calls=[c for c in self._open_calls if c.id not in self._round_results],
                        finished_tool_results=[self._round_results[c.id] for c in self._open_calls
                                               if c.id in self._round_results],
                        continues=bool(self._pending), unrecorded_messages=self._unrecorded_opening),
            **QUICK,
        )

    async def _wait_for_opening_message(self) -> bool:
        try:
            await workflow.wait_condition(lambda: bool(self._opening), timeout=timedelta(minutes=1))
            return True
        except asyncio.TimeoutError:
            return False  # started without a message (by hand, say): nothing to do

    async def _model_round(self, stream_key: str, round_index: int) -> RoundResult:
        policy = self._input.model_policy
        return await workflow.execute_activity(
            act.stream_model_round,
            RoundRequest(session_id=self._input.session_id, turn_id=self._turn_id, stream_key=stream_key,
                         round_index=round_index, mode=self._input.mode, model=self._input.model,
                         allowed_tools=self._allowed_tools, user_id=self._input.user_id,
                         builder_graph_id=self._input.builder_graph_id),
            start_to_close_timeout=timedelta(seconds=policy.round_timeout_seconds),
            heartbeat_timeout=timedelta(seconds=policy.heartbeat_timeout_seconds),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=policy.initial_retry_seconds), backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=policy.max_retry_interval_seconds),
                maximum_attempts=policy.max_attempts,
            ),
        )

    async def _record(self, rows: list[NewMessageRow]) -> None:
        await workflow.execute_local_activity(
            act.record_messages,
            RecordMessagesRequest(session_id=self._input.session_id, turn_id=self._turn_id, rows=rows), **LOCAL,
        )

    async def _check_spend(self) -> SpendCheck:
        return await workflow.execute_local_activity(
            act.check_spend, SpendCheckRequest(user_id=self._input.user_id), **LOCAL)

    async def _record_usage(self, round_index: int, result: RoundResult) -> Optional[SpendCheck]:
        return await workflow.execute_local_activity(
            act.record_usage,
            RecordUsageRequest(user_id=self._input.user_id, session_id=self._input.session_id, turn_id=self._turn_id,
                               round_index=round_index, model=result.model, usage=result.usage), **LOCAL,
        )

    async def _publish(self, stream_key: str, dedup_key: str, parts: list[dict], end_stream: bool = False,
                       continues: bool = False) -> None:
        await workflow.execute_local_activity(
            act.publish_parts,
            PublishRequest(stream_key=stream_key, dedup_key=dedup_key, parts=parts, end_stream=end_stream,
                           continues=continues), **LOCAL,
        )

    async def _finish(self, stream_key: str, closing_text: Optional[str], error: Optional[str]) -> None:
        parts = []
        if closing_text:
            part_id = f"{self._turn_id}-closing"
            parts += [ui_stream.text_start(part_id), ui_stream.text_delta(part_id, closing_text),
                      ui_stream.text_end(part_id)]
        parts.append(ui_stream.finish_step())
        if error:
            await self._record([NewMessageRow(key=keys.TURN_ERROR_ROW, role="system", content=error)])
            parts.append(ui_stream.error(error))
        parts.append(ui_stream.finish())
        await self._publish(stream_key, keys.FINISH_PART, parts, end_stream=True, continues=bool(self._pending))


def _duration(seconds: float) -> str:
    for unit, size in (("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} seconds"


def spend_limit_text(spend: SpendCheck) -> str:
    resets = f" It resets at {spend.resets_at:%Y-%m-%d %H:%M} UTC." if spend.resets_at else ""
    return (f"I stopped here because your {spend.exhausted_window} usage limit is reached.{resets} "
            "You can upgrade your plan or reset the daily limit with credits to go on sooner.")


def round_messages(round_index: int, result: RoundResult) -> list[NewMessageRow]:
    """The rows one model round adds: its reasoning (for people) and its answer."""
    rows = []
    if result.reasoning:
        rows.append(NewMessageRow(key=keys.reasoning_row(round_index), role="reasoning", content=result.reasoning))
    rows.append(NewMessageRow(key=keys.assistant_row(round_index), role="assistant", content=result.text,
                              tool_calls=result.tool_calls or None))
    return rows
