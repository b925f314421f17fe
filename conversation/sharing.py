"""Sharing a session read-only by link, with exactly the workspace files it refers to.

A share is a random token on the session (`session_shares`) and an allowlist of files
(`shared_session_files`). The allowlist is computed when the share is made, from the part of the
conversation the share shows: the user and assistant messages, their tool calls and the tools'
results, up to the last message at that moment. A file is listed only when that part refers to it
(`workspace://<id>`) and it belongs to the session's owner, so a pasted id of someone else's file
is never reachable, and neither is any other file of the owner. Sharing again rotates the token:
the old allowlist is deleted before the new token is written, so the old token and the new list
never coexist. Deleting the session deletes its share and list (foreign keys, ON DELETE CASCADE).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Optional, Sequence

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.db import ChatMessage, ChatSession, SessionShare, SharedSessionFile, WorkspaceFile, utcnow
from workspace.references import referenced_file_ids

# What the public transcript shows; reasoning and system markers (stops, errors) stay private.
PUBLIC_ROLES = ("user", "assistant", "tool")
# A share token is a lowercase UUID4 (what `share_session` makes); a file id is what
# `workspace.files` makes. Anything else is refused before a query runs.
SHARE_TOKEN_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
FILE_ID_PATTERN = r"^[0-9a-f]{32}$"


@dataclass(frozen=True)
class Share:
    token: str
    shared_at: datetime
    file_ids: tuple[str, ...]


def _scannable(rows: Iterable[ChatMessage]) -> list[Any]:
    return [value for row in rows for value in (row.content, row.tool_calls) if value]


async def _public_rows(db: AsyncSession, session_id: str, through_sequence: Optional[int] = None
                       ) -> Sequence[ChatMessage]:
    query = select(ChatMessage).where(ChatMessage.session_id == session_id, ChatMessage.role.in_(PUBLIC_ROLES))
    if through_sequence is not None:
        query = query.where(ChatMessage.sequence <= through_sequence)
    return (await db.execute(query.order_by(ChatMessage.sequence))).scalars().all()


async def _owned_file_ids(db: AsyncSession, user_id: str, file_ids: set[str]) -> list[str]:
    if not file_ids:
        return []
    return sorted((await db.execute(select(WorkspaceFile.id).where(
        WorkspaceFile.id.in_(file_ids), WorkspaceFile.user_id == user_id))).scalars())


async def share_session(db: AsyncSession, session: ChatSession) -> Share:
    """Shares the session under a fresh token (replacing any earlier one) and lists its files."""
    # Two shares of one session at once would each delete the list before the other wrote its
    # own: the session's row lock makes them one after the other.
    await db.execute(select(ChatSession.id).where(ChatSession.id == session.id).with_for_update())
    last = (await db.execute(select(ChatMessage.sequence).where(ChatMessage.session_id == session.id)
                             .order_by(ChatMessage.sequence.desc()).limit(1))).scalar_one_or_none()
    through = last if last is not None else 0
    rows = await _public_rows(db, session.id, through)
    file_ids = await _owned_file_ids(db, session.user_id, referenced_file_ids(_scannable(rows)))
    await db.execute(delete(SharedSessionFile).where(SharedSessionFile.session_id == session.id))
    token, now = str(uuid.uuid4()), utcnow()
    await db.execute(insert(SessionShare).values(session_id=session.id, share_token=token, through_sequence=through,
                                                 shared_at=now).on_conflict_do_update(
        index_elements=[SessionShare.session_id],
        set_={"share_token": token, "through_sequence": through, "shared_at": now}))
    if file_ids:
        await db.execute(insert(SharedSessionFile).values([
            {"share_token": token, "session_id": session.id, "file_id": file_id, "created_at": now}
            for file_id in file_ids]))
    await db.commit()
    return Share(token=token, shared_at=now, file_ids=tuple(file_ids))


async def unshare_session(db: AsyncSession, session_id: str) -> bool:
    """Ends the session's share; True when there was one. The list goes before the token."""
    await db.execute(delete(SharedSessionFile).where(SharedSessionFile.session_id == session_id))
    ended = (await db.execute(delete(SessionShare).where(SessionShare.session_id == session_id)
                              .returning(SessionShare.session_id))).first()
    await db.commit()
    return ended is not None


async def shared_session(db: AsyncSession, token: str) -> Optional[tuple[SessionShare, ChatSession]]:
    found = (await db.execute(select(SessionShare, ChatSession).join(
        ChatSession, ChatSession.id == SessionShare.session_id).where(SessionShare.share_token == token))).first()
    return (found[0], found[1]) if found else None


async def shared_messages(db: AsyncSession, share: SessionShare) -> Sequence[ChatMessage]:
    return await _public_rows(db, share.session_id, share.through_sequence)


async def shared_files(db: AsyncSession, token: str) -> Sequence[WorkspaceFile]:
    return (await db.execute(select(WorkspaceFile).join(
        SharedSessionFile, SharedSessionFile.file_id == WorkspaceFile.id).where(
        SharedSessionFile.share_token == token).order_by(WorkspaceFile.name, WorkspaceFile.id))).scalars().all()


async def shared_file(db: AsyncSession, token: str, file_id: str) -> Optional[WorkspaceFile]:
    """The file when it is on this token's allowlist (one query: the list is the proof), else None."""
    return (await db.execute(select(WorkspaceFile).join(
        SharedSessionFile, SharedSessionFile.file_id == WorkspaceFile.id).where(
        SharedSessionFile.share_token == token, SharedSessionFile.file_id == file_id))).scalar_one_or_none()
