"""/api/chat/sessions: create, list, read and delete sessions; send a message; follow a turn."""

import time
from typing import Annotated, Optional, Union

from fastapi import APIRouter, Header, Query, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, StreamingResponse

from agent_graphs.store import GraphNotFound
from api.auth import CurrentUser
from api.deps import (
    MAX_OFFSET,
    DbDep,
    GraphStoreDep,
    RedisDep,
    SessionMakerDep,
    SettingsDep,
    StorageDep,
    TemporalDep,
    ToolNamesDep,
)
from api.errors import ApiError, not_found
from api.openapi import EVENT_ID_DOC
from api.sending import SendOptions, release_connection, run_turn_and_wait, send_message_to_session, stop_session_turn
from api.sse import APPROVAL_PROTOCOL_HEADER, sse_response
from billing.accounts import open_account
from conversation import sessions as store
from conversation.builder_sessions import get_or_create_builder_session
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
    ToolApprovalDecision,
    TurnAnswer,
)
from models.db import ChatSession
from models.turn import ApprovalAnswer, MessageContext, PageContext, ToolDecision
from observability import logs, metrics
from stream_relay.cleanup import delete_session_streams
from stream_relay.keys import latest_turn_key
from stream_relay.reader import STREAM_START, valid_entry_id
from workflows import turn_client
from workspace.files import WorkspaceError, attach_files

router = APIRouter(prefix="/api/chat/sessions", tags=["sessions"])

ERRORS = {401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}}
IdempotencyKeyHeader = Annotated[Optional[str], Header(
    alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
    description="Makes the send safe to retry: a repeat within the window answers the first outcome.")]
AiSdkVersionHeader = Annotated[Optional[str], Header(
    alias=APPROVAL_PROTOCOL_HEADER, pattern=r"^[0-9]{1,2}$",
    description="The AI SDK major version the client runs; 6 or later gets tool approvals as that protocol's own parts.")]
APPROVAL_ID_PATTERN = r"^approval_[A-Za-z0-9_-]{1,200}$"
SSE_DOC = {"description": "A Vercel AI SDK UI message stream (v1) of Server-Sent Events.",
           "content": {"text/event-stream": {}}}


def summary(session: ChatSession) -> SessionSummary:
    return SessionSummary(id=session.id, title=session.title, parent_session_id=session.parent_session_id,
                          metadata=session.session_metadata, dry_run=session.dry_run,
                          builder_graph_id=session.builder_graph_id, created_at=session.created_at,
                          updated_at=session.updated_at)


async def _owned(db: DbDep, user: CurrentUser, session_id: str) -> ChatSession:
    session = await store.owned_session(db, user.id, session_id)
    if session is None:
        raise not_found()
    return session


@router.post("", status_code=201, response_model=SessionSummary,
             responses={**ERRORS, 200: {"model": SessionSummary,
                                        "description": "The builder's session for `builder_graph_id`, made before."}})
async def create_session(body: CreateSessionRequest, user: CurrentUser, db: DbDep, settings: SettingsDep,
                         graphs: GraphStoreDep, response: Response) -> SessionSummary:
    """Creates a session. With `builder_graph_id`: the builder's chat for that graph of the caller's,
    created once (201) and the same session ever after (200), also for two calls at once; a graph
    that is not the caller's is a 404, before anything is created."""
    metadata = dict(body.metadata)
    if body.tool_filter is not None:
        metadata[store.TOOL_FILTER_KEY] = body.tool_filter.model_dump()
    if body.require_approval:
        metadata[store.APPROVAL_KEY] = sorted(set(body.require_approval))
    if body.builder_graph_id is not None:
        try:
            session, created = await get_or_create_builder_session(db, graphs, user.id, body.builder_graph_id,
                                                                   body.title, metadata)
        except GraphNotFound:
            raise not_found("agent graph")
        await open_account(db, user.id, settings.initial_credits, email=user.email)
        await db.commit()
        if not created:
            response.status_code = 200
        return summary(session)
    await open_account(db, user.id, settings.initial_credits, email=user.email)
    return summary(await store.create_session(db, user.id, body.title, metadata, dry_run=body.dry_run))


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
async def stream_message(session_id: str, body: SendMessageRequest, user: CurrentUser, db: DbDep,
                       temporal: TemporalDep, redis: RedisDep, settings: SettingsDep, tool_names: ToolNamesDep,
                       storage: StorageDep, idempotency_key: IdempotencyKeyHeader = None,
                       ai_sdk_version: AiSdkVersionHeader = None) -> Union[StreamingResponse, JSONResponse]:
    """Starts a turn with the message and streams it; if a turn is running, queues the message (202).
    Repeated with the same `Idempotency-Key`: the first send's answer (its turn's stream from the
    start, or the same 202), and nothing sent again."""
    sent_at = time.monotonic()
    session = await _owned(db, user, session_id)
    options = SendOptions(context=await _message_context(db, storage, user.id, body),
                          is_user_message=body.is_user_message, mode=body.mode, model=body.model)
    result = await send_message_to_session(db, redis, temporal, settings, tool_names, session, user.id, body.message,
                                           idempotency_key, options)
    if result.queued:
        metrics.FOLLOW_UPS_QUEUED.inc()
        queued = QueuedResponse(turn_id=result.turn_id, message_id=result.message_id,
                                buffer_length=result.buffer_length, max_buffer_length=result.max_buffer_length)
        return JSONResponse(queued.model_dump(), status_code=202)
    return sse_response(redis, session.id, result.turn_id, settings, sent_at=sent_at,
                        client_version=int(ai_sdk_version) if ai_sdk_version else None)


@router.post("/{session_id}/turns", response_model=TurnAnswer,
             responses={**ERRORS, 409: {"model": ErrorResponse}, 422: {"model": ErrorResponse},
                        429: {"model": ErrorResponse}})
async def run_turn(session_id: str, body: RunTurnRequest, user: CurrentUser, db: DbDep, temporal: TemporalDep,
                   redis: RedisDep, settings: SettingsDep, sessions: SessionMakerDep,
                   tool_names: ToolNamesDep, idempotency_key: IdempotencyKeyHeader = None) -> TurnAnswer:
    """Runs a turn and waits up to `wait_seconds` for its answer: request/response for bots and
    graph blocks (the AutoPilot block). On a busy session the message is queued, and the call
    waits for the turn that delivers it (`queued: true`); with no wait it answers `queued` at once.
    Idempotent with `Idempotency-Key`, as `POST .../stream` is."""
    session = await _owned(db, user, session_id)
    return await run_turn_and_wait(db, redis, temporal, settings, tool_names, sessions, session, user.id, body,
                                   idempotency_key)


async def _message_context(db, storage, user_id: str, body: SendMessageRequest) -> Optional[MessageContext]:
    """The page and the files that come with the message; a file that is not the user's is a 422."""
    try:
        files = await attach_files(db, storage, user_id, body.file_ids)
    except WorkspaceError as problem:
        raise ApiError(422, problem.code, f"file_ids: {problem.message}")
    page = PageContext(url=body.context.url, content=body.context.content) if body.context else None
    return MessageContext(page=page, files=files) if page or files else None


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
    return await stop_session_turn(temporal, session.id)


@router.get("/{session_id}/stream", responses={**ERRORS, 200: SSE_DOC}, response_class=StreamingResponse)
async def follow_turn(session_id: str, user: CurrentUser, db: DbDep, redis: RedisDep, settings: SettingsDep,
                      from_: Annotated[Optional[str], Query(alias="from", description="Resume after this event id.",
                                                            json_schema_extra=EVENT_ID_DOC)] = None,
                      last_event_id: Annotated[Optional[str], Header(json_schema_extra=EVENT_ID_DOC)] = None,
                      ai_sdk_version: AiSdkVersionHeader = None) -> StreamingResponse:
    """Re-attaches to the session's running (or most recent) turn: from the start, or after
    `Last-Event-ID` / `?from=` when reconnecting."""
    session = await _owned(db, user, session_id)
    await release_connection(db)
    after = last_event_id or from_ or STREAM_START
    if not valid_entry_id(after):
        raise ApiError(422, "invalid_event_id", "An event id looks like '1700000000000-0'.")
    turn_id = await redis.get(latest_turn_key(session.id))
    if turn_id is None:
        raise ApiError(404, "no_turn", "This session has no recent turn to follow.")
    logs.annotate(turn_id=turn_id)
    return sse_response(redis, session.id, turn_id, settings, after, follow_next_turns=True,
                        client_version=int(ai_sdk_version) if ai_sdk_version else None)


@router.post("/{session_id}/tool-approvals/{approval_id}", response_model=ApprovalAnswer,
             responses={**ERRORS, 409: {"model": ErrorResponse}, 422: {"model": ErrorResponse}})
async def decide_tool_call(session_id: str, approval_id: Annotated[str, PathParam(pattern=APPROVAL_ID_PATTERN)],
                           body: ToolApprovalDecision, user: CurrentUser, db: DbDep, temporal: TemporalDep,
                           sessions: SessionMakerDep) -> ApprovalAnswer:
    """Approves or denies a tool call waiting for approval (the stream's `tool-approval-request`).
    Approved, the call runs and the turn goes on; denied, the model is told, with the reason.
    The same decision twice is not an error and runs nothing twice; a call that was stopped,
    timed out or decided otherwise is a 409 saying why."""
    session = await _owned(db, user, session_id)
    await release_connection(db)
    try:
        return await turn_client.decide_tool_call(temporal, sessions, session.id, ToolDecision(
            approval_id=approval_id, approved=body.approved, reason=body.reason))
    except turn_client.ApprovalRefused as refusal:
        raise ApiError(refusal.status, refusal.code, refusal.message)
