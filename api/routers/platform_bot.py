"""/api/platform-bot: what a chat platform's bot does, authenticated by its service credential
(never a user's JWT): resolve a server or a person, issue link tokens and read their status,
start a turn for the owner of a linked conversation, follow its stream, stop it.

A bot acts only on its own platform's links and conversations; anything else looks missing.
Platform ids travel in bodies (never in paths, so no access log holds them), and no answer names
an owner: the bot learns whether something is linked, never to whom.
"""

import asyncio
import logging
import time
from typing import Annotated, Optional, Union

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse, StreamingResponse

from api.deps import DbDep, RedisDep, SettingsDep, TemporalDep, ToolNamesDep
from api.errors import ApiError
from api.openapi import EVENT_ID_DOC
from api.routers.platform_linking import TokenPath, linking_refusal
from api.routers.sessions import SSE_DOC, IdempotencyKeyHeader
from api.sending import release_connection, send_message_to_session, stop_session_turn
from api.service_auth import BotCaller, ServiceCaller
from api.sse import sse_response
from models.api import ErrorResponse, StopResponse
from models.db import utcnow
from models.keys import turn_stream_key
from models.platform_api import (
    BotChatRequest,
    ChatTurnHandle,
    CreateServerLinkTokenRequest,
    CreateUserLinkTokenRequest,
    LinkTokenResponse,
    LinkTokenStatusResponse,
    ResolveResponse,
    ResolveServerRequest,
    ResolveUserRequest,
)
from models.platform_links import PlatformLinkToken
from models.platforms import LinkType, Platform
from platform_linking import conversations, links
from platform_linking.errors import LinkingError
from stream_relay.keys import latest_turn_key
from stream_relay.reader import STREAM_START, valid_entry_id

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/platform-bot", tags=["platform-bot"])

ERROR = {"model": ErrorResponse}
BOT_ERRORS = {401: ERROR, 403: ERROR}
TURN_ID_PATTERN = r"^[0-9a-fA-F-]{36}$"  # a turn id is its workflow run's id, a UUID
STREAM_OPEN_WAIT_SECONDS = 3.0


def _own_platform(caller: ServiceCaller, platform: Platform) -> str:
    if not caller.may_act_for(platform.value):
        raise ApiError(403, "wrong_platform", f"This credential does not act for {platform.value}.")
    return platform.value


def _not_linked(direct: bool) -> ApiError:
    what = "These direct messages are" if direct else "This server is"
    return ApiError(404, "not_linked", f"{what} not linked to an account; create a link token and show the person "
                    "its link.")


def _resolved(link) -> ResolveResponse:
    if link is None:
        return ResolveResponse(linked=False)
    return ResolveResponse(linked=True, link_id=link.id, linked_at=link.created_at)


def _token_answer(token: PlatformLinkToken, base_url: str) -> LinkTokenResponse:
    return LinkTokenResponse(token=token.token, link_type=token.link_type, expires_at=token.expires_at,
                             link_url=f"{base_url.rstrip('/')}/{token.token}")


@router.post("/servers/resolve", response_model=ResolveResponse, responses=BOT_ERRORS)
async def resolve_server(body: ResolveServerRequest, caller: BotCaller, db: DbDep) -> ResolveResponse:
    """Whether the server is linked (not to whom)."""
    platform = _own_platform(caller, body.platform)
    return _resolved(await links.find_server_link(db, platform, body.platform_server_id))


@router.post("/users/resolve", response_model=ResolveResponse, responses=BOT_ERRORS)
async def resolve_user(body: ResolveUserRequest, caller: BotCaller, db: DbDep) -> ResolveResponse:
    """Whether the person's DMs are linked (not to whom)."""
    platform = _own_platform(caller, body.platform)
    return _resolved(await links.find_user_link(db, platform, body.platform_user_id))


@router.post("/link-tokens/server", status_code=201, response_model=LinkTokenResponse,
             responses={**BOT_ERRORS, 409: ERROR})
async def create_server_link_token(body: CreateServerLinkTokenRequest, caller: BotCaller, db: DbDep,
                                   settings: SettingsDep) -> LinkTokenResponse:
    """A one-time token (30 minutes) for linking the server; the server's earlier open tokens are
    superseded. `409 already_linked` when the server is linked."""
    platform = _own_platform(caller, body.platform)
    try:
        token = await links.issue_link_token(db, LinkType.SERVER, platform, body.platform_server_id, body.server_name)
    except LinkingError as error:
        raise linking_refusal(error)
    return _token_answer(token, settings.platform_link_base_url)


@router.post("/link-tokens/user", status_code=201, response_model=LinkTokenResponse,
             responses={**BOT_ERRORS, 409: ERROR})
async def create_user_link_token(body: CreateUserLinkTokenRequest, caller: BotCaller, db: DbDep,
                                 settings: SettingsDep) -> LinkTokenResponse:
    """A one-time token for linking the person's DMs to their account (as the server token)."""
    platform = _own_platform(caller, body.platform)
    try:
        token = await links.issue_link_token(db, LinkType.USER, platform, body.platform_user_id,
                                             body.platform_username)
    except LinkingError as error:
        raise linking_refusal(error)
    return _token_answer(token, settings.platform_link_base_url)


@router.get("/link-tokens/{token}", response_model=LinkTokenStatusResponse, responses={**BOT_ERRORS, 404: ERROR})
async def get_link_token_status(token: TokenPath, caller: BotCaller, db: DbDep) -> LinkTokenStatusResponse:
    """pending, linked, expired or superseded: how the bot knows the person has confirmed."""
    row = await links.find_token(db, token)
    if row is None or not caller.may_act_for(row.platform):
        raise ApiError(404, "not_found", "No such link token.")
    return LinkTokenStatusResponse(status=links.token_status(row, utcnow()), link_type=row.link_type,
                                   expires_at=row.expires_at)


@router.post("/chat/turns", response_model=ChatTurnHandle,
             responses={**BOT_ERRORS, 202: {"model": ChatTurnHandle, "description": "A turn was running: queued."},
                        404: ERROR, 409: ERROR, 429: ERROR})
async def start_chat_turn(body: BotChatRequest, caller: BotCaller, db: DbDep, temporal: TemporalDep,
                          redis: RedisDep, settings: SettingsDep, tool_names: ToolNamesDep,
                          idempotency_key: IdempotencyKeyHeader = None) -> Union[ChatTurnHandle, JSONResponse]:
    """Starts (200) or queues (202) a turn for the conversation's owner with the message, through
    the same checks and update-with-start as the browser's send: the owner's spend limits,
    message rate and running turns apply (`429`). The session is the owner's session of this
    server channel or DM, made on its first message. `404 not_linked` when the server (or the
    person's DMs) is not linked. Safe to retry with an `Idempotency-Key` (the platform's message
    id is a good one)."""
    platform = _own_platform(caller, body.platform)
    if body.platform_server_id is not None and body.platform_channel_id is None:
        raise ApiError(422, "invalid_request", "A server's message needs its platform_channel_id.")
    target = await conversations.find_chat_target(db, platform, body.platform_user_id, body.platform_server_id,
                                                  body.platform_channel_id)
    session = await conversations.conversation_session(db, target, settings.initial_credits) if target else None
    if target is None or session is None:
        raise _not_linked(direct=body.platform_server_id is None)
    result = await send_message_to_session(db, redis, temporal, settings, tool_names, session, target.owner_user_id,
                                           body.message, idempotency_key)
    log.info("bot turn %s in session %s for owner %s (%s, %s)", result.turn_id, session.id,
             links.owner_tag(target.owner_user_id), target.link_type.value, "queued" if result.queued else "started")
    handle = ChatTurnHandle(session_id=session.id, turn_id=result.turn_id, message_id=result.message_id,
                            queued=result.queued, stream_key=turn_stream_key(session.id, result.turn_id),
                            stream_url=f"{router.prefix}/sessions/{session.id}/stream?turn_id={result.turn_id}")
    if result.queued:
        return JSONResponse(handle.model_dump(), status_code=202)
    return handle


async def _stream_opens(redis, stream_key: str) -> bool:
    """A turn the bot was just handed opens its stream within milliseconds; an unknown (or expired)
    one never does, and following it would only wait for the idle timeout."""
    deadline = time.monotonic() + STREAM_OPEN_WAIT_SECONDS
    while not await redis.exists(stream_key):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def _bot_session(db, session_id: str, caller: ServiceCaller):
    session = await conversations.bot_session(db, session_id, caller.scopes)
    if session is None:
        raise ApiError(404, "not_found", "No such session.")
    return session


@router.get("/sessions/{session_id}/stream", responses={**BOT_ERRORS, 200: SSE_DOC, 404: ERROR},
            response_class=StreamingResponse)
async def follow_chat_turn(session_id: str, caller: BotCaller, db: DbDep, redis: RedisDep, settings: SettingsDep,
                           turn_id: Annotated[Optional[str], Query(pattern=TURN_ID_PATTERN, description=(
                               "The turn to follow (from the chat answer); the session's latest without it."))] = None,
                           from_: Annotated[Optional[str], Query(alias="from", description="Resume after this event "
                                                                 "id.", json_schema_extra=EVENT_ID_DOC)] = None,
                           last_event_id: Annotated[Optional[str], Header(json_schema_extra=EVENT_ID_DOC)] = None,
                           ) -> StreamingResponse:
    """The turn's UI message stream, as `GET /api/chat/sessions/{id}/stream` gives it to the
    browser, following into auto-continued turns (where queued messages are answered). Only a
    session of a live link of the bot's platform: after the link is deleted, `404`."""
    session = await _bot_session(db, session_id, caller)
    await release_connection(db)
    after = last_event_id or from_ or STREAM_START
    if not valid_entry_id(after):
        raise ApiError(422, "invalid_event_id", "An event id looks like '1700000000000-0'.")
    turn_id = turn_id or await redis.get(latest_turn_key(session.id))
    if turn_id is None or not await _stream_opens(redis, turn_stream_key(session.id, turn_id)):
        raise ApiError(404, "no_turn", "This session has no such recent turn to follow.")
    return sse_response(redis, session.id, turn_id, settings, after, follow_next_turns=True)


@router.post("/sessions/{session_id}/stop", response_model=StopResponse,
             responses={**BOT_ERRORS, 404: ERROR, 503: ERROR})
async def stop_chat_turn(session_id: str, caller: BotCaller, db: DbDep, temporal: TemporalDep) -> StopResponse:
    """Stops the conversation's running turn, as the browser's Stop does."""
    session = await _bot_session(db, session_id, caller)
    await release_connection(db)
    return await stop_session_turn(temporal, session.id)
