"""/api/admin/diagnostics/turns/...: what operators may do to turns, and /api/admin/audit, the record
of every such action (who, when, what, how it ended).

An action applies only to what it is for: a stop to running turns, stop-all to long-running ones,
terminate to a stuck turn that does not take a Stop. A bulk request that names nothing it can act
on answers `success: false`, not an error.
"""

import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, AsyncIterator, Optional

from fastapi import APIRouter, Depends, Query

from api.auth import AuthenticatedUser
from api.deps import DbDep, RedisDep, SettingsDep, TemporalDep
from api.errors import ApiError, not_found
from api.routers.admin import require_admin
from models.api import ErrorResponse
from models.db import utcnow
from models.diagnostics import (
    ActionResponse,
    AuditEntry,
    AuditPage,
    StopTurnRequest,
    StopTurnsRequest,
    TerminateResponse,
    TerminateTurnRequest,
)
from operations.audit import audit_page, record_action
from workflows import turn_client
from workflows import turn_diagnostics as diagnostics

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[Depends(require_admin)],
                   responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}})
Admin = Annotated[AuthenticatedUser, Depends(require_admin)]
NOT_FOUND = {404: {"model": ErrorResponse, "description": "The session never had a turn."}}

STOP_MESSAGES = {
    "stopped": "Turn stopped.",
    "not_running": "The session has no running turn.",
    "stop_pending": "The stop is asked for, but the turn has not closed yet; ask again to wait for it.",
    "error": "Temporal refused the stop; try again.",
}


@dataclass
class AuditDraft:
    """What an action records; an action that raises is recorded as `error`."""

    outcome: str = "error"
    details: dict[str, Any] = field(default_factory=dict)


@asynccontextmanager
async def audited(db, admin: AuthenticatedUser, action: str, target: Optional[str] = None,
                  reason: Optional[str] = None) -> AsyncIterator[AuditDraft]:
    draft = AuditDraft()
    try:
        yield draft
    finally:
        await record_action(db, admin.id, action, draft.outcome, target=target, reason=reason, details=draft.details)
        log.info("admin %s: %s %s -> %s", admin.id, action, target or "", draft.outcome)


def _stopped(outcomes: dict[str, str]) -> int:
    return sum(outcome == "stopped" for outcome in outcomes.values())


def _not_stopped_note(outcomes: dict[str, str]) -> str:
    notes = []
    pending = sum(outcome == "stop_pending" for outcome in outcomes.values())
    if pending:
        notes.append(f"{pending} still closing")
    refused = sum(outcome == "error" for outcome in outcomes.values())
    if refused:
        notes.append(f"{refused} refused")
    return f" ({', '.join(notes)})" if notes else ""


@router.post("/diagnostics/turns/stop", response_model=ActionResponse, responses=NOT_FOUND)
async def admin_stop_turn(body: StopTurnRequest, admin: Admin, db: DbDep, temporal: TemporalDep) -> ActionResponse:
    """Stops one session's running turn, as its owner's Stop would, and waits for it to close."""
    async with audited(db, admin, "stop_turn", target=body.session_id) as audit:
        if await diagnostics.current_run(temporal, body.session_id) is None:
            audit.outcome = "not_found"
            raise not_found("turn")
        outcomes = await diagnostics.stop_turns(temporal, [body.session_id], concurrency=1)
        audit.outcome = outcomes[body.session_id]
    stopped = _stopped(outcomes)
    return ActionResponse(success=bool(stopped), stopped_count=stopped, requested_count=1,
                          message=STOP_MESSAGES[audit.outcome], outcomes=outcomes)


@router.post("/diagnostics/turns/stop-bulk", response_model=ActionResponse)
async def admin_stop_turns(body: StopTurnsRequest, admin: Admin, db: DbDep, temporal: TemporalDep,
                     settings: SettingsDep) -> ActionResponse:
    """Stops the running turns of these sessions, `ADMIN_STOP_CONCURRENCY` at a time; the others
    are `not_running`. Each stop reads its turn's state from Temporal itself, not from visibility,
    so a turn started a moment ago is found too."""
    requested = list(dict.fromkeys(body.session_ids))
    async with audited(db, admin, "stop_turns") as audit:
        outcomes = await diagnostics.stop_turns(temporal, requested, settings.admin_stop_concurrency)
        stopped = _stopped(outcomes)
        audit.outcome = f"stopped {stopped} of {len(requested)}"
        audit.details = {"outcomes": outcomes}
    if all(outcome == "not_running" for outcome in outcomes.values()):
        return ActionResponse(success=False, requested_count=len(requested), message="No running turns found.",
                              outcomes=outcomes)
    return ActionResponse(success=stopped > 0, stopped_count=stopped, requested_count=len(requested),
                          message=f"Stopped {stopped} of {len(requested)} turns{_not_stopped_note(outcomes)}.",
                          outcomes=outcomes)


@router.post("/diagnostics/turns/stop-all-long-running", response_model=ActionResponse)
async def admin_stop_all_long_running(admin: Admin, db: DbDep, temporal: TemporalDep,
                                      settings: SettingsDep) -> ActionResponse:
    """Stops every turn running for longer than `LONG_RUNNING_TURN_SECONDS` (all of them, not a page)."""
    async with audited(db, admin, "stop_all_long_running") as audit:
        long_running = await diagnostics.long_running_session_ids(temporal, utcnow(), settings.long_running_turn_seconds)
        outcomes = await diagnostics.stop_turns(temporal, long_running, settings.admin_stop_concurrency)
        stopped = _stopped(outcomes)
        audit.outcome = f"stopped {stopped} of {len(long_running)}"
        audit.details = {"outcomes": outcomes, "long_running_after_seconds": settings.long_running_turn_seconds}
    return ActionResponse(success=stopped > 0, stopped_count=stopped, requested_count=len(long_running),
                          message=f"Stopped {stopped} long-running turns{_not_stopped_note(outcomes)}.",
                          outcomes=outcomes)


@router.post("/diagnostics/turns/terminate", response_model=TerminateResponse,
             responses={**NOT_FOUND, 409: {"model": ErrorResponse, "description": "The turn is not stuck "
                                                                                  "(`turn_not_stuck`): stop it."},
                        503: {"model": ErrorResponse}})
async def admin_terminate_turn(body: TerminateTurnRequest, admin: Admin, db: DbDep, temporal: TemporalDep, redis: RedisDep,
                         settings: SettingsDep) -> TerminateResponse:
    """Ends a stuck turn that does not take a Stop. It is asked to stop first (for
    `ADMIN_TERMINATE_STOP_WAIT_SECONDS`); only if it has not closed by then is its run terminated
    with the reason, and its stream ended for whoever reads it."""
    async with audited(db, admin, "terminate_turn", target=body.session_id, reason=body.reason) as audit:
        turn = await diagnostics.current_run(temporal, body.session_id)
        if turn is None:
            audit.outcome = "not_found"
            raise not_found("turn")
        if turn.status != "running":
            audit.outcome = "not_running"
            return TerminateResponse(success=False, outcome="not_running", message=STOP_MESSAGES["not_running"])
        if not await diagnostics.with_last_events(redis, [turn]):
            raise ApiError(503, "redis_unavailable", "Redis did not answer, so whether the turn is stuck is "
                           "unknown; try again shortly.", headers={"Retry-After": "2"})
        audit.details = {"turn_id": turn.turn_id, "last_event_at": (turn.last_event_at or turn.started_at).isoformat()}
        if not diagnostics.is_stuck(turn, utcnow(), settings.stream_idle_timeout_seconds):
            audit.outcome = "not_stuck"
            raise ApiError(409, "turn_not_stuck", f"The turn's stream moved within the last "
                           f"{settings.stream_idle_timeout_seconds:.0f}s; stop it instead.")
        try:
            await turn_client.stop_turn(temporal, body.session_id, settings.admin_terminate_stop_wait_seconds)
            audit.outcome = "stopped"
        except turn_client.StopPending:
            await diagnostics.terminate_turn(temporal, redis, turn, f"{body.reason} (by admin {admin.id})",
                                             settings.stream_retention_seconds)
            audit.outcome = "terminated"
    if audit.outcome == "stopped":
        return TerminateResponse(success=True, outcome="stopped", message="The turn took the stop and has closed; "
                                 "nothing was terminated.")
    return TerminateResponse(success=True, outcome="terminated", message="The turn did not take the stop and was "
                             "terminated.")


@router.get("/audit", response_model=AuditPage)
async def list_audit(db: DbDep, limit: Annotated[int, Query(ge=1, le=500)] = 100,
                     offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
                     action: Annotated[Optional[str], Query(max_length=64, pattern=r"^[a-z_]+$")] = None,
                     target: Annotated[Optional[str], Query(max_length=64, pattern=r"^[^\x00]+$",
                                                            description="A session id.")] = None) -> AuditPage:
    """Every admin action, newest first; of one action, or about one session."""
    rows, total = await audit_page(db, limit, offset, action=action, target=target)
    return AuditPage(entries=[AuditEntry.model_validate(r, from_attributes=True) for r in rows], total=total,
                     limit=limit, offset=offset)
