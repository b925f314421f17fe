"""/api/admin/diagnostics/turns and /api/admin/users/{id}: what operators read about every turn and
any user (role claim `admin`). How each figure is read, and what it costs: `workflows/turn_diagnostics.py`."""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.deps import DbDep, RedisDep, SettingsDep, TemporalDep
from api.errors import ApiError, not_found
from api.routers.admin import admin_usage, require_admin
from billing.credits import balance
from conversation.sessions import list_sessions
from models.api import ErrorResponse
from models.db import utcnow
from models.diagnostics import TurnDiagnostics, TurnList, UserLookup, UserSessionOut
from operations.users import account_exists
from settings import Settings
from workflows import turn_diagnostics as diagnostics

router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[Depends(require_admin)],
                   responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}})

Limit = Annotated[int, Query(ge=1, le=500, description="Turns per page.")]
# Visibility pages by token, so an offset is walked through: deeper than this is no dashboard's page.
Offset = Annotated[int, Query(ge=0, le=10_000)]
# Any user id a token can carry (api/auth.py), short of "/", which cannot be one path segment.
UserId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^/\x00]+$")]
REDIS_DOWN = {503: {"model": ErrorResponse, "description": "Redis did not answer (`redis_unavailable`)."}}


def thresholds(settings: Settings) -> diagnostics.Thresholds:
    return diagnostics.Thresholds(long_running_seconds=settings.long_running_turn_seconds,
                                  stuck_seconds=settings.stream_idle_timeout_seconds)


def redis_unavailable() -> ApiError:
    return ApiError(503, "redis_unavailable", "Redis did not answer, so the turn streams cannot be read; try again "
                    "shortly.", headers={"Retry-After": "2"})


@router.get("/diagnostics/turns", response_model=TurnDiagnostics)
async def turn_diagnostics(temporal: TemporalDep, redis: RedisDep, settings: SettingsDep) -> TurnDiagnostics:
    """Running, queued, failed, completed, long-running and stuck turns, and subscriptions with a
    pending change, at one moment."""
    return await diagnostics.summary(temporal, redis, utcnow(), thresholds(settings))


async def _running_page(temporal, redis, query: str, limit: int, offset: int) -> TurnList:
    total = await diagnostics.count(temporal, query)
    turns = await diagnostics.page(temporal, query, limit, offset)
    await diagnostics.with_live_state(temporal, turns)
    await diagnostics.with_last_events(redis, turns)
    return TurnList(turns=turns, total=total, limit=limit, offset=offset)


@router.get("/diagnostics/turns/running", response_model=TurnList)
async def running_turns(temporal: TemporalDep, redis: RedisDep, limit: Limit = 100, offset: Offset = 0) -> TurnList:
    """Every running turn, newest first, with its round, buffer and last stream event."""
    return await _running_page(temporal, redis, diagnostics.RUNNING, limit, offset)


@router.get("/diagnostics/turns/long-running", response_model=TurnList)
async def long_running_turns(temporal: TemporalDep, redis: RedisDep, settings: SettingsDep, limit: Limit = 100,
                             offset: Offset = 0) -> TurnList:
    """Turns running for longer than `LONG_RUNNING_TURN_SECONDS`."""
    since = utcnow() - timedelta(seconds=settings.long_running_turn_seconds)
    return await _running_page(temporal, redis, diagnostics.started_before(since), limit, offset)


@router.get("/diagnostics/turns/stuck", response_model=TurnList, responses=REDIS_DOWN)
async def stuck_turns(temporal: TemporalDep, redis: RedisDep, settings: SettingsDep, limit: Limit = 100,
                      offset: Offset = 0) -> TurnList:
    """Running turns whose stream has had no event for longer than `STREAM_IDLE_TIMEOUT_SECONDS`,
    the longest quiet first."""
    stuck = await diagnostics.stuck_turns(temporal, redis, utcnow(), settings.stream_idle_timeout_seconds)
    if stuck is None:
        raise redis_unavailable()
    turns = stuck[offset:offset + limit]
    await diagnostics.with_live_state(temporal, turns)
    return TurnList(turns=turns, total=len(stuck), limit=limit, offset=offset)


@router.get("/diagnostics/turns/failed", response_model=TurnList)
async def failed_turns(temporal: TemporalDep, limit: Limit = 100, offset: Offset = 0,
                       hours: Annotated[int, Query(ge=1, le=24 * 30)] = 24) -> TurnList:
    """Turns that failed in the last `hours`, the latest first, with the error each ended with."""
    query = f"{diagnostics.closed_since(utcnow() - timedelta(hours=hours))} AND {diagnostics.FAILED}"
    total = await diagnostics.count(temporal, query)
    turns = await diagnostics.page(temporal, query, limit, offset)
    await diagnostics.with_close_details(temporal, turns)
    return TurnList(turns=turns, total=total, limit=limit, offset=offset)


@router.get("/users/{user_id}", response_model=UserLookup, responses={404: {"model": ErrorResponse}})
async def look_up_user(user_id: UserId, db: DbDep, redis: RedisDep, temporal: TemporalDep,
                       settings: SettingsDep) -> UserLookup:
    """One user in one call: tier, credits, spend windows, latest sessions and running turns."""
    if not await account_exists(db, user_id):
        raise not_found("user")
    usage = await admin_usage(db, redis, settings, user_id)
    sessions, session_count = await list_sessions(db, user_id, limit=20, offset=0)
    return UserLookup(
        user_id=user_id, tier=usage.tier, credits=await balance(db, user_id), usage=usage,
        sessions=[UserSessionOut.model_validate(s, from_attributes=True) for s in sessions],
        session_count=session_count, running_turns=await diagnostics.user_running_turns(temporal, user_id),
    )
