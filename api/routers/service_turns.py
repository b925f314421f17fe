"""/api/service: turns run by another service on behalf of a user it names (the AutoPilot graph
block of the agent platform), authenticated by a service credential (`SERVICE_TOKENS`), never a
user's JWT. The user's own limits, tier and sessions apply, exactly as if they had sent it."""

import logging
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam

from api.deps import DbDep, RedisDep, SessionMakerDep, SettingsDep, TemporalDep, ToolNamesDep
from api.errors import not_found
from api.routers.sessions import IdempotencyKeyHeader
from api.sending import run_turn_and_wait
from api.service_auth import TurnServiceCaller
from billing.accounts import open_account
from conversation import sessions as store
from models.api import ErrorResponse, ServiceTurnRequest, TurnAnswer

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/service", tags=["service"])

ERROR = {"model": ErrorResponse}
# A user id as tokens carry it (`sub`): what the JWT routes accept, bounded.
UserIdPath = Annotated[str, PathParam(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@|+-]+$")]


@router.post("/users/{user_id}/turns", response_model=TurnAnswer,
             responses={401: ERROR, 404: ERROR, 409: ERROR, 422: ERROR, 429: ERROR})
async def run_turn_for_user(user_id: UserIdPath, body: ServiceTurnRequest, _caller: TurnServiceCaller, db: DbDep,
                            temporal: TemporalDep, redis: RedisDep, settings: SettingsDep, sessions: SessionMakerDep,
                            tool_names: ToolNamesDep, idempotency_key: IdempotencyKeyHeader = None) -> TurnAnswer:
    """`POST /api/chat/sessions/{id}/turns` for the user named in the path: in their session
    `session_id` (a session of someone else's answers 404, as a missing one does), or in a new
    session of theirs when none is given."""
    if body.session_id:
        session = await store.owned_session(db, user_id, body.session_id)
        if session is None:
            raise not_found()
    else:
        await open_account(db, user_id, settings.initial_credits)
        session = await store.create_session(db, user_id, None, {"created_by": "service"})
    log.info("service turn for user …%s in session %s", user_id[-8:], session.id)
    return await run_turn_and_wait(db, redis, temporal, settings, tool_names, sessions, session, user_id,
                                   body, idempotency_key)
