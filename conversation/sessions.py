"""Chat sessions and their messages in Postgres, always scoped to their owner."""

import json
import uuid
from typing import Any, Optional, Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models import keys
from models.db import ChatMessage, ChatSession, User, WorkspaceFile, utcnow
from models.text import storable, storable_json
from models.tool_filter import ToolFilter
from models.turn import ToolCallEntry

TITLE_FROM_MESSAGE_CHARS = 80
# Keys of a session's metadata that the server sets (from their own request fields).
TOOL_FILTER_KEY, APPROVAL_KEY = "tool_filter", "require_approval"


class MessageInvalid(ValueError):
    pass


def check_message_text(text: str, max_chars: int) -> str:
    if not text.strip():
        raise MessageInvalid("The message is empty.")
    if len(text) > max_chars:
        raise MessageInvalid(f"The message is {len(text)} characters long; the limit is {max_chars}.")
    return text


def title_from_message(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_FROM_MESSAGE_CHARS else line[: TITLE_FROM_MESSAGE_CHARS - 1] + "…"


def _parse_id(session_id: str) -> Optional[str]:
    try:
        return str(uuid.UUID(session_id))
    except ValueError:
        return None


async def ensure_user(db: AsyncSession, user_id: str) -> None:
    await db.execute(insert(User).values(id=user_id, created_at=utcnow()).on_conflict_do_nothing())


async def create_session(db: AsyncSession, user_id: str, title: Optional[str], metadata: dict[str, Any],
                         parent_session_id: Optional[str] = None, dry_run: bool = False,
                         builder_graph_id: Optional[str] = None, commit: bool = True) -> ChatSession:
    await ensure_user(db, user_id)
    now = utcnow()
    # The API refuses what a person typed that cannot be stored; a sub-session's title and
    # metadata come from the model's arguments and are cleaned instead.
    session = ChatSession(id=str(uuid.uuid4()), user_id=user_id, title=storable(title) if title else title,
                          parent_session_id=parent_session_id, session_metadata=storable_json(metadata),
                          dry_run=dry_run, builder_graph_id=builder_graph_id, created_at=now, updated_at=now)
    db.add(session)
    if commit:
        await db.commit()
    return session


async def owned_session(db: AsyncSession, user_id: str, session_id: str) -> Optional[ChatSession]:
    """The session if it exists and belongs to this user; None otherwise (the two look the same)."""
    parsed = _parse_id(session_id)
    if parsed is None:
        return None
    return (await db.execute(
        select(ChatSession).where(ChatSession.id == parsed, ChatSession.user_id == user_id)
    )).scalar_one_or_none()


async def list_sessions(db: AsyncSession, user_id: str, limit: int, offset: int) -> tuple[Sequence[ChatSession], int]:
    total = (await db.execute(select(func.count()).where(ChatSession.user_id == user_id))).scalar_one()
    rows = (await db.execute(
        select(ChatSession).where(ChatSession.user_id == user_id)
        .order_by(ChatSession.updated_at.desc(), ChatSession.id).limit(limit).offset(offset)
    )).scalars().all()
    return rows, total


async def session_messages(db: AsyncSession, session_id: str) -> Sequence[ChatMessage]:
    return (await db.execute(
        select(ChatMessage).where(ChatMessage.session_id == session_id).order_by(ChatMessage.sequence)
    )).scalars().all()


async def set_title_if_missing(db: AsyncSession, session: ChatSession, first_message: str) -> str:
    if not session.title:
        session.title = title_from_message(first_message)
        await db.commit()
    return session.title


async def delete_session(db: AsyncSession, session: ChatSession) -> None:
    """The session, its messages and the records of its workspace files (the files themselves
    are the storage's to remove)."""
    await db.execute(delete(WorkspaceFile).where(WorkspaceFile.session_id == session.id,
                                                 WorkspaceFile.user_id == session.user_id))
    await db.execute(delete(ChatSession).where(ChatSession.id == session.id))
    await db.commit()


async def sub_session_ids(db: AsyncSession, session: ChatSession) -> list[str]:
    """Every sub-session below this one, however deep (sub-sessions of sub-sessions)."""
    tree = select(ChatSession.id).where(ChatSession.parent_session_id == session.id,
                                        ChatSession.user_id == session.user_id).cte("tree", recursive=True)
    tree = tree.union(select(ChatSession.id).where(ChatSession.parent_session_id == tree.c.id,
                                                   ChatSession.user_id == session.user_id))
    return list((await db.execute(select(tree.c.id))).scalars())


async def latest_turn_id(db: AsyncSession, session_id: str) -> Optional[str]:
    """The session's most recent turn that stored anything."""
    return (await db.execute(
        select(ChatMessage.turn_id).where(ChatMessage.session_id == session_id)
        .order_by(ChatMessage.sequence.desc()).limit(1)
    )).scalar_one_or_none()


async def turn_of_message(db: AsyncSession, session_id: str, message_id: str) -> Optional[str]:
    """The turn that delivered a user message (stored it), or None while it waits in a buffer."""
    return (await db.execute(
        select(ChatMessage.turn_id).where(ChatMessage.session_id == session_id, ChatMessage.role == "user",
                                          ChatMessage.idempotency_key.endswith(f":{keys.user_row(message_id)}"))
    )).scalar_one_or_none()


async def turn_messages(db: AsyncSession, session_id: str, turn_id: str) -> Sequence[ChatMessage]:
    return (await db.execute(
        select(ChatMessage).where(ChatMessage.session_id == session_id, ChatMessage.turn_id == turn_id)
        .order_by(ChatMessage.sequence)
    )).scalars().all()


async def recorded_tool_result(db: AsyncSession, session_id: str, tool_call_id: str) -> Optional[str]:
    """The stored result of the session's latest call with this id, if it has one."""
    return (await db.execute(
        select(ChatMessage.content).where(ChatMessage.session_id == session_id, ChatMessage.role == "tool",
                                          ChatMessage.tool_call_id == tool_call_id)
        .order_by(ChatMessage.sequence.desc()).limit(1)
    )).scalar_one_or_none()


def tool_call_entries(rows: Sequence[ChatMessage]) -> list[ToolCallEntry]:
    """Each tool call the turn's answers made, with its result where there is one."""
    results = {r.tool_call_id: r.content for r in rows if r.role == "tool"}
    entries = []
    for row in rows:
        if row.role != "assistant":
            continue
        for call in row.tool_calls or []:
            entry = ToolCallEntry(tool_call_id=call["id"], tool_name=call["name"], input=_json_or_text(call["arguments"]))
            if call["id"] in results:
                output = _json_or_text(results[call["id"]])
                entry.output = output
                entry.success = not (isinstance(output, dict) and set(output) == {"error"})
            entries.append(entry)
    return entries


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def session_approval_tools(session: ChatSession) -> list[str]:
    """The tools whose calls wait for approval in this session, on top of the server's list."""
    return list(session.session_metadata.get(APPROVAL_KEY) or [])


def session_tool_filter(session: ChatSession) -> ToolFilter:
    return ToolFilter.model_validate(session.session_metadata.get(TOOL_FILTER_KEY) or {})


async def session_progress(db: AsyncSession, session_id: str, last: int, chars: int) -> dict:
    """How far a session has got: its message count and its last messages, cut to `chars`."""
    rows = await session_messages(db, session_id)
    return {"message_count": len(rows),
            "last_messages": [{"role": r.role, "content": r.content[:chars]} for r in rows[-last:]]}
