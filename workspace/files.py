"""Workspace files: metadata in Postgres, bytes in a `WorkspaceStorage`, always owner-scoped."""

import re
import uuid
from typing import Optional, Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from conversation.sessions import ensure_user
from models.db import WorkspaceFile, utcnow
from workspace.storage import WorkspaceStorage

URI_PREFIX = "workspace://"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$")


class WorkspaceError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def check_name(name: str) -> str:
    if not SAFE_NAME.match(name) or ".." in name:
        raise WorkspaceError("invalid_name", "A file name is 1-128 letters, digits, '.', '_', '-' or spaces, "
                             "starts with a letter or digit, and has no '/' or '..'.")
    return name


def file_uri(file_id: str) -> str:
    return f"{URI_PREFIX}{file_id}"


def parse_file_ref(ref: str) -> Optional[str]:
    """A file id from `workspace://<id>` or a bare id; None when it is not one of ours."""
    file_id = ref[len(URI_PREFIX):] if ref.startswith(URI_PREFIX) else ref
    return file_id if re.fullmatch(r"[0-9a-f]{32}", file_id) else None


async def save_file(db: AsyncSession, storage: WorkspaceStorage, user_id: str, session_id: Optional[str],
                    name: str, data: bytes, max_bytes: int, content_type: str = "text/plain",
                    file_id: Optional[str] = None) -> WorkspaceFile:
    """Stores a new file. With a `file_id` (32 hex digits) the call is idempotent: a file already
    stored under that id for this user is returned as it is."""
    check_name(name)
    if len(data) > max_bytes:
        raise WorkspaceError("too_large", f"The file is {len(data)} bytes; the limit is {max_bytes}.")
    if file_id is not None:
        if parse_file_ref(file_id) is None:
            raise ValueError("a file id is 32 hex digits")
        existing = await owned_file(db, user_id, file_id)
        if existing is not None:
            return existing
    await ensure_user(db, user_id)
    record = WorkspaceFile(id=file_id or uuid.uuid4().hex, user_id=user_id, session_id=session_id, name=name,
                           size_bytes=len(data), content_type=content_type, created_at=utcnow())
    await storage.put(user_id, record.id, data)
    db.add(record)
    try:
        await db.commit()
    except IntegrityError:
        if file_id is None:
            raise
        await db.rollback()  # stored at the same moment by another attempt of the same call
        existing = await owned_file(db, user_id, file_id)
        if existing is None:
            raise
        return existing
    return record


async def owned_file(db: AsyncSession, user_id: str, ref: str) -> Optional[WorkspaceFile]:
    file_id = parse_file_ref(ref)
    if file_id is None:
        return None
    return (await db.execute(
        select(WorkspaceFile).where(WorkspaceFile.id == file_id, WorkspaceFile.user_id == user_id)
    )).scalar_one_or_none()


async def list_files(db: AsyncSession, user_id: str, limit: int = 100, offset: int = 0) -> Sequence[WorkspaceFile]:
    return (await db.execute(
        select(WorkspaceFile).where(WorkspaceFile.user_id == user_id)
        .order_by(WorkspaceFile.created_at.desc(), WorkspaceFile.id).limit(limit).offset(offset)
    )).scalars().all()
