"""/api/chat/sessions: create, list, read and delete sessions; send a message; follow a turn."""

import uuid
from typing import Annotated, Optional, Union

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse

from api.auth import CurrentUser
from api.deps import (
    MAX_OFFSET,
    DbDep,
    RedisDep,
    SessionMakerDep,
    SettingsDep,
    StorageDep,
    TemporalDep,
    ToolNamesDep,
)
from api.errors import ApiError, not_found
from api.sse import sse_response
from billing.accounts import open_account, user_tier
from billing.spend import OverSpendLimit, SpendWindows
from conversation import sessions as store
from conversation.idempotent_sends import IdempotentSend, KeyInUse, KeyReused
from limits.message_rate import MessageRateLimiter
from models.api import (
    CreateSessionRequest,
    ErrorResponse,
    LiveTurn,
    MessageOut,
    PendingMessages,
    QueuedResponse,
    RunTurnRequest,
    SendMessageRequest,
    SessionDetail,
    SessionPage,
    SessionSummary,
    StopResponse,
)
from models.db import ChatSession
from models.turn import IncomingMessage, SubmitResult, TurnOutcome
from stream_relay.cleanup import delete_session_streams
from stream_relay.keys import latest_turn_key
from stream_relay.reader import STREAM_START, valid_entry_id
from workflows import turn_client

router = APIRouter(prefix="/api/chat/sessions", tags=["sessions"])

ERRORS = {401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}}
IdempotencyKeyHeader = Annotated[Optional[str], Header(
    alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
    description="Makes the send safe to retry: a repeat within the window answers the first outcome.")]
SSE_DOC = {"description": "A Vercel AI SDK UI message stream (v1) of Server-Sent Events.",
           "content": {"text/event-stream": {}}}


async def _submit(temporal, settings, tool_names: tuple[str, ...], session: ChatSession, user_id: str, text: str,
                  title: str, message_id: str) -> SubmitResult:
    message = IncomingMessage(message_id=message_id, content=text)
    input = turn_client.turn_input(settings, session.id, user_id, tool_names, store.session_tool_filter(session))
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


async def _accept_message(db, redis, settings, session: ChatSession, user_id: str, text: str) -> str:
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


async def _check_running_turns(temporal, settings, session: ChatSession, user_id: str) -> None:
    """A user runs at most `max_running_turns_per_user` turns at once (a follow-up to a running
    turn is not a new one: that session is not counted)."""
    running = await turn_client.running_turns(temporal, user_id, excluding_session=session.id)
    if running >= settings.max_running_turns_per_user:
        raise ApiError(429, "too_many_running_turns", f"{running} of your turns are running (at most "
                       f"{settings.max_running_turns_per_user} at once); wait for one to finish or stop one.",
                       headers={"Retry-After": "5"})


async def _send(db, redis, temporal, settings, tool_names: tuple[str, ...], session: ChatSession, user_id: str,
                message: str, idempotency_key: Optional[str]) -> SubmitResult:
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
        text = await _accept_message(db, redis, settings, session, user_id, message)
        await _check_running_turns(temporal, settings, session, user_id)
        title = await store.set_title_if_missing(db, session, text)
        await _release(db)
        result = await _submit(temporal, settings, tool_names, session, user_id, text, title,
                               send.message_id if send else str(uuid.uuid4()))
    except BaseException:
        if send is not None:
            await send.release()
        raise
    if send is not None:
        await send.remember(result)
    return result


async def _release(db) -> None:
    """Gives the request's database connection back before a long wait: a stream lasts as long as
    the answer (and `/turns` may wait for hours), and a connection held idle in a transaction
    for that time would cap the concurrent streams at the size of the pool. The loaded session
    object stays readable."""
    await db.close()


def summary(session: ChatSession) -> SessionSummary:
    return SessionSummary(id=session.id, title=session.title, parent_session_id=session.parent_session_id,
                          metadata=session.session_metadata, created_at=session.created_at,
                          updated_at=session.updated_at)


async def _owned(db: DbDep, user: CurrentUser, session_id: str) -> ChatSession:
    session = await store.owned_session(db, user.id, session_id)
    if session is None:
        raise not_found()
    return session


@router.post("", status_code=201, response_model=SessionSummary, responses=ERRORS)
async def create_session(body: CreateSessionRequest, user: CurrentUser, db: DbDep,
                         settings: SettingsDep) -> SessionSummary:
    metadata = dict(body.metadata)
    if body.tool_filter is not None:
        metadata["tool_filter"] = body.tool_filter.model_dump()
    await open_account(db, user.id, settings.initial_credits, email=user.email)
    return summary(await store.create_session(db, user.id, body.title, metadata))


@router.get("", response_model=SessionPage, responses=ERRORS)
async def list_sessions(user: CurrentUser, db: DbDep, limit: Annotated[int, Query(ge=1, le=100)] = 20,
                        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> SessionPage:
    rows, total = await store.list_sessions(db, user.id, limit, offset)
    return SessionPage(sessions=[summary(s) for s in rows], total=total, limit=limit, offset=offset)


@router.get("/{session_id}", response_model=SessionDetail, responses=ERRORS)
async def get_session(session_id: str, user: CurrentUser, db: DbDep, temporal: TemporalDep) -> SessionDetail:
    session = await _owned(db, user, session_id)
    messages = await store.session_messages(db, session.id)
    state = await turn_client.running_turn_state(temporal, session.id)
    return SessionDetail(
        **summary(session).model_dump(),
        messages=[MessageOut.model_validate(m, from_attributes=True) for m in messages],
        active_turn=LiveTurn(**state.model_dump()) if state else None,
    )


@router.delete("/{session_id}", status_code=204, responses=ERRORS)
async def delete_session(session_id: str, user: CurrentUser, db: DbDep, temporal: TemporalDep, redis: RedisDep,
                         storage: StorageDep) -> Response:
    """Stops the session's turn and those of its sub-sessions (which stay, as sessions of their
    own), then removes the session's rows, its workspace folder and its stream keys."""
    session = await _owned(db, user, session_id)
    sub_sessions = await store.sub_session_ids(db, session)
    await turn_client.end_turn_for_deletion(temporal, session.id)
    await turn_client.stop_turns_without_waiting(temporal, sub_sessions)
    await store.delete_session(db, session)
    storage.remove_session(session.id)
    await delete_session_streams(redis, session.id)
    return Response(status_code=204)


@router.post(
    "/{session_id}/stream",
    responses={**ERRORS, 200: SSE_DOC, 202: {"model": QueuedResponse, "description": "A turn is running; queued."},
               409: {"model": ErrorResponse}, 422: {"model": ErrorResponse}, 429: {"model": ErrorResponse}},
    response_model=None,
)
async def send_message(session_id: str, body: SendMessageRequest, user: CurrentUser, db: DbDep,
                       temporal: TemporalDep, redis: RedisDep, settings: SettingsDep, tool_names: ToolNamesDep,
                       idempotency_key: IdempotencyKeyHeader = None) -> Union[StreamingResponse, JSONResponse]:
    """Starts a turn with the message and streams it; if a turn is running, queues the message (202).
    Repeated with the same `Idempotency-Key`: the first send's answer (its turn's stream from the
    start, or the same 202), and nothing sent again."""
    session = await _owned(db, user, session_id)
    result = await _send(db, redis, temporal, settings, tool_names, session, user.id, body.message, idempotency_key)
    if result.queued:
        queued = QueuedResponse(turn_id=result.turn_id, message_id=result.message_id,
                                buffer_length=result.buffer_length, max_buffer_length=result.max_buffer_length)
        return JSONResponse(queued.model_dump(), status_code=202)
    return sse_response(redis, session.id, result.turn_id, settings)


@router.post("/{session_id}/turns", response_model=TurnOutcome,
             responses={**ERRORS, 409: {"model": ErrorResponse}, 422: {"model": ErrorResponse},
                        429: {"model": ErrorResponse}})
async def run_turn(session_id: str, body: RunTurnRequest, user: CurrentUser, db: DbDep, temporal: TemporalDep,
                   redis: RedisDep, settings: SettingsDep, sessions: SessionMakerDep,
                   tool_names: ToolNamesDep, idempotency_key: IdempotencyKeyHeader = None) -> TurnOutcome:
    """Runs (or queues) a turn and waits up to `wait_seconds` for its answer: request/response
    for bots and graph blocks, the same primitive sub-sessions use. Idempotent with
    `Idempotency-Key`, as `POST .../stream` is."""
    session = await _owned(db, user, session_id)
    submitted = await _send(db, redis, temporal, settings, tool_names, session, user.id, body.message,
                            idempotency_key)
    if submitted.queued:
        return TurnOutcome(status="queued", queued=True, pending_buffer_length=submitted.buffer_length)
    return await turn_client.turn_outcome(temporal, sessions, session.id, body.wait_seconds)


@router.get("/{session_id}/messages/pending", response_model=PendingMessages, responses=ERRORS)
async def pending_messages(session_id: str, user: CurrentUser, db: DbDep, temporal: TemporalDep,
                           settings: SettingsDep) -> PendingMessages:
    """Peeks at the follow-ups queued in the running turn, without draining them."""
    session = await _owned(db, user, session_id)
    state = await turn_client.running_turn_state(temporal, session.id)
    if state is None:
        return PendingMessages(turn_in_flight=False, buffer_length=0,
                               max_buffer_length=settings.max_pending_messages, messages=[])
    return PendingMessages(turn_in_flight=True, buffer_length=state.buffer_length,
                           max_buffer_length=state.max_buffer_length, messages=state.pending)


@router.post("/{session_id}/stop", response_model=StopResponse, responses={**ERRORS, 503: {"model": ErrorResponse}})
async def stop_turn(session_id: str, user: CurrentUser, db: DbDep, temporal: TemporalDep) -> StopResponse:
    """Stops the running turn: what it had said is kept, open tool calls get a "stopped by user"
    result, and the call returns once the session is idle. Idempotent. `503 stop_pending` when the
    turn has not closed in time (the stop stays requested; call again to wait for it)."""
    session = await _owned(db, user, session_id)
    try:
        return StopResponse(stopped=await turn_client.stop_turn(temporal, session.id))
    except turn_client.StopPending:
        raise ApiError(503, "stop_pending", "The stop was requested but the turn has not closed yet; call stop "
                       "again (it is idempotent) to wait for it.", details={"retryable": True},
                       headers={"Retry-After": "1"})


@router.get("/{session_id}/stream", responses={**ERRORS, 200: SSE_DOC}, response_class=StreamingResponse)
async def follow_turn(session_id: str, user: CurrentUser, db: DbDep, redis: RedisDep, settings: SettingsDep,
                      from_: Annotated[Optional[str], Query(alias="from", description="Resume after this event id.")] = None,
                      last_event_id: Annotated[Optional[str], Header()] = None) -> StreamingResponse:
    """Re-attaches to the session's running (or most recent) turn: from the start, or after
    `Last-Event-ID` / `?from=` when reconnecting."""
    session = await _owned(db, user, session_id)
    await _release(db)
    after = last_event_id or from_ or STREAM_START
    if not valid_entry_id(after):
        raise ApiError(422, "invalid_event_id", "An event id looks like '1700000000000-0'.")
    turn_id = await redis.get(latest_turn_key(session.id))
    if turn_id is None:
        raise ApiError(404, "no_turn", "This session has no recent turn to follow.")
    return sse_response(redis, session.id, turn_id, settings, after, follow_next_turns=True)
