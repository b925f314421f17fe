"""Handing a user's message to a session's turn: the checks every send makes (text, spend,
message rate, running turns, idempotency) and the update-with-start that starts or queues the
turn. The browser's routes (`api/routers/sessions.py`) and the platform bot's
(`api/routers/platform_bot.py`) send through here, so a message reaches a turn one way only."""

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Optional

from api.errors import ApiError
from billing.accounts import user_tier
from billing.spend import OverSpendLimit, SpendWindows
from conversation import sessions as store
from conversation.idempotent_sends import IdempotentSend, KeyInUse, KeyReused
from limits.message_rate import MessageRateLimiter
from models.api import HistoryEntry, RunTurnRequest, StopResponse, TurnAnswer
from models.db import ChatSession
from models.turn import ChatMode, IncomingMessage, MessageContext, ModelChoice, SubmitResult, TurnOutcome
from observability import logs, metrics
from workflows import turn_client

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendOptions:
    """What a send carries besides its text."""

    context: Optional[MessageContext] = None
    is_user_message: bool = True
    mode: ChatMode = "fast"
    model: ModelChoice = "standard"
    depth: int = 0  # how deep in calls from turns into turns the turn starts (its sub-sessions count on)


async def submit(temporal, settings, tool_names: tuple[str, ...], session: ChatSession, user_id: str, text: str,
                 title: str, message_id: str, options: SendOptions = SendOptions()) -> SubmitResult:
    message = IncomingMessage(message_id=message_id, content=text, context=options.context,
                              is_user_message=options.is_user_message)
    input = turn_client.turn_input(settings, session.id, user_id, tool_names, store.session_tool_filter(session),
                                   depth=options.depth, dry_run=session.dry_run, mode=options.mode,
                                   model=options.model, approval_tools=store.session_approval_tools(session),
                                   builder_graph_id=session.builder_graph_id)
    try:
        return await turn_client.submit_message(temporal, settings, input, message, title)
    except turn_client.MessageRefused as refusal:
        if refusal.buffer_full:
            raise ApiError(429, "buffer_full", f"{settings.max_pending_messages} messages are already queued for "
                           "this session; wait for the assistant to catch up.")
        if refusal.closing:  # the message is fine; the previous turn is slow to close: send it again
            raise ApiError(409, "turn_closing", "The previous turn is still finishing; send the message again "
                           "in a moment.", details={"retryable": True}, headers={"Retry-After": "1"})
        raise ApiError(422, "invalid_message", refusal.message)


async def accept_message(db, redis, settings, session: ChatSession, user_id: str, text: str) -> str:
    """Checks the text, the sender's spend limits and message rate; refusals happen before
    anything is written."""
    try:
        text = store.check_message_text(text, settings.max_message_chars)
    except store.MessageInvalid as problem:
        raise ApiError(422, "invalid_message", str(problem))
    try:
        await SpendWindows(redis, settings).check(user_id, await user_tier(db, user_id))
    except OverSpendLimit as over:
        raise ApiError(429, "usage_limit", f"You have used your {over.window} allowance; it resets at "
                       f"{over.resets_at.isoformat()}.", details={"window": over.window,
                                                                   "resets_at": over.resets_at.isoformat()})
    rate = await MessageRateLimiter(redis, settings.message_rate_limit, settings.message_rate_window_seconds).hit(user_id)
    if not rate.allowed:
        raise ApiError(429, "rate_limited", f"More than {settings.message_rate_limit} messages in "
                       f"{settings.message_rate_window_seconds}s; try again in {rate.retry_after_seconds}s.",
                       headers={"Retry-After": str(rate.retry_after_seconds)})
    return text


async def check_running_turns(temporal, settings, session: ChatSession, user_id: str) -> None:
    """A user runs at most `max_running_turns_per_user` turns at once (a follow-up to a running
    turn is not a new one: that session is not counted)."""
    running = await turn_client.running_turns(temporal, user_id, excluding_session=session.id)
    if running >= settings.max_running_turns_per_user:
        raise ApiError(429, "too_many_running_turns", f"{running} of your turns are running (at most "
                       f"{settings.max_running_turns_per_user} at once); wait for one to finish or stop one.",
                       headers={"Retry-After": "5"})


async def send_message_to_session(db, redis, temporal, settings, tool_names: tuple[str, ...], session: ChatSession,
                                  user_id: str, message: str, idempotency_key: Optional[str],
                                  options: SendOptions = SendOptions()) -> SubmitResult:
    """Checks and hands the message to the session's turn (starting one, or queueing in the one
    running). With an idempotency key, a repeat answers the first send's outcome and sends nothing."""
    send = IdempotentSend(redis, user_id, session.id, idempotency_key, message, settings.idempotency_window_seconds
                          ) if idempotency_key else None
    if send is not None:
        try:
            earlier = await send.earlier_outcome()
        except KeyInUse:
            raise ApiError(409, "idempotency_key_in_use", "A send with this Idempotency-Key is still being "
                           "processed; retry in a moment.", details={"retryable": True}, headers={"Retry-After": "1"})
        except KeyReused:
            raise ApiError(422, "idempotency_key_reused", "This Idempotency-Key was used for a different message "
                           "or session; use a new key for a new message.")
        if earlier is not None:
            return earlier
    try:
        text = await accept_message(db, redis, settings, session, user_id, message)
        await check_running_turns(temporal, settings, session, user_id)
        title = await store.set_title_if_missing(db, session, text)
        await release_connection(db)
        result = await submit(temporal, settings, tool_names, session, user_id, text, title,
                              send.message_id if send else str(uuid.uuid4()), options)
    except BaseException:
        if send is not None:
            await send.release()
        raise
    if send is not None:
        await send.remember(result)
    logs.annotate(turn_id=result.turn_id)
    log.info("message %s %s turn %s of session %s", result.message_id, "queued in" if result.queued else "started",
             result.turn_id, session.id)
    return result


async def release_connection(db) -> None:
    """Gives the request's database connection back before a long wait: a stream lasts as long as
    the answer (and `/turns` may wait for hours), and a connection held idle in a transaction
    for that time would cap the concurrent streams at the size of the pool. The loaded session
    object stays readable."""
    await db.close()


async def run_turn_and_wait(db, redis, temporal, settings, tool_names: tuple[str, ...], sessions,
                            session: ChatSession, user_id: str, body: RunTurnRequest,
                            idempotency_key: Optional[str]) -> TurnAnswer:
    """A turn as the AutoPilot graph block runs it: sent, then waited for. On a busy session the
    message is queued and the call waits for the turn that delivers it (`queued: true`); with no
    wait it answers `queued` at once."""
    if body.recursion_depth >= body.max_recursion_depth:
        raise ApiError(422, "recursion_too_deep", f"This call would run {body.recursion_depth + 1} levels deep; "
                       f"max_recursion_depth is {body.max_recursion_depth}.")
    prompt = f"[System Context: {body.system_context}]\n\n{body.message}" if body.system_context else body.message
    submitted = await send_message_to_session(db, redis, temporal, settings, tool_names, session, user_id, prompt,
                                              idempotency_key, SendOptions(depth=body.recursion_depth))
    if submitted.queued and body.wait_seconds <= 0:
        outcome = TurnOutcome(status="queued", queued=True, pending_buffer_length=submitted.buffer_length)
    else:
        outcome = await turn_client.message_outcome(temporal, sessions, session.id, submitted.message_id,
                                                    body.wait_seconds,
                                                    None if submitted.queued else submitted.turn_id)
        if submitted.queued:
            outcome = outcome.model_copy(update={"queued": True, "pending_buffer_length": submitted.buffer_length})
    history = [HistoryEntry(role="user", content=prompt)]
    if outcome.status != "queued":
        history.append(HistoryEntry(role="assistant", content=outcome.response or "", tool_calls=outcome.tool_calls))
    # Token counts, never the provider's cost (users see spend as percentages only).
    return TurnAnswer(**outcome.model_dump(exclude={"usage"}), session_id=session.id, conversation_history=history)


async def stop_session_turn(temporal, session_id: str) -> StopResponse:
    """Stop, answered the same way on every route that offers it: `503 stop_pending` when the turn
    has not closed in time (the stop stays requested; asking again waits for it)."""
    started = time.monotonic()
    try:
        stopped = await turn_client.stop_turn(temporal, session_id)
    except turn_client.StopPending:
        raise ApiError(503, "stop_pending", "The stop was requested but the turn has not closed yet; call stop "
                       "again (it is idempotent) to wait for it.", details={"retryable": True},
                       headers={"Retry-After": "1"})
    if stopped:
        metrics.STOP_LATENCY.observe(time.monotonic() - started)
    return StopResponse(stopped=stopped)
