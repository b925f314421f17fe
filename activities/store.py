"""Database reads and writes of a turn. Every write is idempotent: rows carry a key unique
within their session, so a retried activity never duplicates a message."""

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from models.db import ChatMessage, ChatSession, utcnow
from models.text import storable, storable_json
from models.turn import BeginTurnRequest, NewMessageRow, RecordMessagesRequest


async def insert_rows(db: AsyncSession, session_id: str, turn_id: str, rows: list[NewMessageRow]) -> None:
    """Appends rows in order; rows whose key is already stored for this turn are skipped."""
    if not rows:
        return
    rows = [row.model_copy(update={"key": f"{turn_id}:{row.key}"}) for row in rows]
    # The session row lock serialises sequence numbers between concurrent writers.
    await db.execute(select(ChatSession.id).where(ChatSession.id == session_id).with_for_update())
    existing = set((await db.execute(
        select(ChatMessage.idempotency_key).where(
            ChatMessage.session_id == session_id, ChatMessage.idempotency_key.in_([r.key for r in rows])
        )
    )).scalars())
    next_sequence = (await db.execute(
        select(func.coalesce(func.max(ChatMessage.sequence), 0)).where(ChatMessage.session_id == session_id)
    )).scalar_one() + 1
    now = utcnow()
    for row in rows:
        if row.key in existing:
            continue
        await db.execute(insert(ChatMessage).values(
            session_id=session_id, sequence=next_sequence, role=row.role, content=storable(row.content),
            tool_calls=storable_json([c.model_dump() for c in row.tool_calls]) if row.tool_calls else None,
            tool_call_id=row.tool_call_id, turn_id=turn_id, idempotency_key=row.key, created_at=now,
            context=storable_json(row.context.model_dump(exclude_none=True)) if row.context else None,
            is_user_message=row.is_user_message,
        ).on_conflict_do_nothing(constraint="uq_chat_messages_session_idempotency_key"))
        next_sequence += 1
    await db.execute(update(ChatSession).where(ChatSession.id == session_id).values(updated_at=now))


class StoreActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]):
        self.sessions = sessions

    @activity.defn
    async def begin_turn(self, request: BeginTurnRequest) -> None:
        """Persists the messages that start the turn (the model reads them from Postgres)."""
        async with self.sessions.begin() as db:
            await insert_rows(db, request.session_id, request.turn_id, [m.row() for m in request.messages])

    @activity.defn
    async def record_messages(self, request: RecordMessagesRequest) -> None:
        async with self.sessions.begin() as db:
            await insert_rows(db, request.session_id, request.turn_id, request.rows)
