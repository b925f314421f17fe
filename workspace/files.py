"""Workspace files: metadata in Postgres, bytes in a `WorkspaceStorage`, always owner-scoped.

A file saved in a session is the file of that name in the session's folder: saving the same name
again in the session replaces its bytes and keeps its id, as a file system would."""

import re
import uuid
from typing import Optional, Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from conversation.sessions import ensure_user
from models.db import WorkspaceFile, utcnow
from models.text import storable
from models.turn import AttachedFile
from workspace.mime import detect_mime_type
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
                    name: str, data: bytes, max_bytes: int, content_type: Optional[str] = None,
                    file_id: Optional[str] = None, session_quota_bytes: Optional[int] = None) -> WorkspaceFile:
    """Stores a file. With a `file_id` (32 hex digits) the call is idempotent: a file already
    stored under that id for this user is returned as it is. In a session, the session's folder
    may hold at most `session_quota_bytes` in all. Without a `content_type`, the type is detected
    from the bytes and the name (`workspace.mime`)."""
    check_name(name)
    content_type = content_type or detect_mime_type(name, data)
    if len(data) > max_bytes:
        raise WorkspaceError("too_large", f"The file is {len(data)} bytes; the limit is {max_bytes}.")
    if file_id is not None:
        if parse_file_ref(file_id) is None:
            raise ValueError("a file id is 32 hex digits")
        existing = await owned_file(db, user_id, file_id)
        if existing is not None:
            return existing
    same_name = await _session_file_named(db, user_id, session_id, name) if session_id and file_id is None else None
    if session_id and session_quota_bytes is not None:
        used = storage.session_usage(session_id) - (same_name.size_bytes if same_name else 0)
        if used + len(data) > session_quota_bytes:
            raise WorkspaceError("quota_exceeded", f"This session's workspace holds {used} bytes; "
                                 f"{len(data)} more would pass its quota of {session_quota_bytes}.")
    await ensure_user(db, user_id)
    if same_name is not None:
        await storage.put(user_id, same_name.id, data, session_id, name)
        same_name.size_bytes, same_name.content_type = len(data), content_type
        await db.commit()
        return same_name
    record = WorkspaceFile(id=file_id or uuid.uuid4().hex, user_id=user_id, session_id=session_id, name=name,
                           size_bytes=len(data), content_type=content_type, created_at=utcnow())
    await storage.put(user_id, record.id, data, session_id, name)
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


async def _session_file_named(db: AsyncSession, user_id: str, session_id: str, name: str) -> Optional[WorkspaceFile]:
    return (await db.execute(select(WorkspaceFile).where(
        WorkspaceFile.user_id == user_id, WorkspaceFile.session_id == session_id, WorkspaceFile.name == name,
    ).order_by(WorkspaceFile.created_at).limit(1))).scalar_one_or_none()


async def file_bytes(storage: WorkspaceStorage, record: WorkspaceFile) -> bytes:
    return await storage.get(record.user_id, record.id, record.session_id, record.name)


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


# Attached text up to this size goes to the model whole; larger or binary files by reference.
ATTACHED_TEXT_MAX_BYTES = 64 * 1024
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/yaml")


async def attach_files(db: AsyncSession, storage: WorkspaceStorage, user_id: str, refs: Sequence[str]) -> list[AttachedFile]:
    """The user's files to attach to a message, in order, once each. A ref that is not one of the
    user's files (missing, someone else's, malformed) is refused the same way."""
    attached: dict[str, AttachedFile] = {}
    for ref in refs:
        record = await owned_file(db, user_id, ref)
        if record is None:
            raise WorkspaceError("unknown_file", f"No such file: {ref[:80]!r}.")
        if record.id in attached:
            continue
        text = None
        if record.size_bytes <= ATTACHED_TEXT_MAX_BYTES and record.content_type.startswith(TEXT_TYPES):
            try:
                text = storable((await file_bytes(storage, record)).decode("utf-8"))
            except (UnicodeDecodeError, OSError):
                text = None  # unreadable as text: the model gets the reference
        attached[record.id] = AttachedFile(file_id=record.id, name=record.name, content_type=record.content_type,
                                           size_bytes=record.size_bytes, text=text)
    return list(attached.values())
