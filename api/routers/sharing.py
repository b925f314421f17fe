"""/api/chat/sessions/{id}/share: the owner shares a session read-only by link, or ends the share."""

import logging

from fastapi import APIRouter, Response

from api.auth import CurrentUser
from api.deps import DbDep, SettingsDep
from api.errors import not_found
from conversation import sessions as store
from conversation import sharing
from models.api import ErrorResponse
from models.sharing import ShareResponse

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/chat/sessions", tags=["sharing"])
ERRORS = {401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}}


def share_url(frontend_origin: str, token: str) -> str:
    return f"{frontend_origin.rstrip('/')}/share/{token}"


@router.post("/{session_id}/share", response_model=ShareResponse, responses=ERRORS)
async def share_session(session_id: str, user: CurrentUser, db: DbDep, settings: SettingsDep) -> ShareResponse:
    """Shares the session under a fresh token: anyone with the link reads the conversation as it is
    now and opens the workspace files it refers to, nothing else. Sharing again rotates the token
    (the old link stops working at once) and lists the files afresh."""
    session = await store.owned_session(db, user.id, session_id)
    if session is None:
        raise not_found()
    share = await sharing.share_session(db, session)
    log.info("session %s shared with %d files", session.id, len(share.file_ids))  # never the token
    return ShareResponse(share_token=share.token, share_url=share_url(settings.frontend_origin, share.token),
                         shared_at=share.shared_at, file_count=len(share.file_ids))


@router.delete("/{session_id}/share", status_code=204, responses=ERRORS)
async def unshare_session(session_id: str, user: CurrentUser, db: DbDep) -> Response:
    """Ends the share: the link and its file list stop working at once. Idempotent."""
    session = await store.owned_session(db, user.id, session_id)
    if session is None:
        raise not_found()
    if await sharing.unshare_session(db, session.id):
        log.info("share of session %s ended", session.id)
    return Response(status_code=204)
