"""The model's context for a round, read from Postgres incrementally.

Messages are only ever appended to a session (each with the next sequence number), so a worker
keeps the rows it has read per session and, at the next round, reads only the rows stored since.
A turn's rounds therefore cost one full read per worker, not one per round, and the
conversation never travels through workflow history: the workflow passes ids, not messages.
"""

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conversation.history import model_history
from models.db import ChatMessage
from models.turn import ModelMessage


@dataclass(frozen=True)
class CachedRow:
    role: str
    content: str
    tool_calls: Optional[list]
    tool_call_id: Optional[str]
    context: Optional[dict]


@dataclass
class _SessionRows:
    last_sequence: int = 0
    rows: list[CachedRow] = field(default_factory=list)


class ContextCache:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], max_sessions: int = 512):
        self.sessions = sessions
        self.max_sessions = max_sessions
        self._by_session: OrderedDict[str, _SessionRows] = OrderedDict()

    async def history(self, session_id: str, system_suffix: str = "", latest_user_prefix: str = "") -> list[ModelMessage]:
        """Everything stored for the session so far, as the model sees it (with what
        `model_history` adds for this round only)."""
        cached = self._by_session.pop(session_id, None) or _SessionRows()
        async with self.sessions() as db:
            new_rows = (await db.execute(
                select(ChatMessage.sequence, ChatMessage.role, ChatMessage.content, ChatMessage.tool_calls,
                       ChatMessage.tool_call_id, ChatMessage.context)
                .where(ChatMessage.session_id == session_id, ChatMessage.sequence > cached.last_sequence)
                .order_by(ChatMessage.sequence)
            )).all()
        # Rounds of one session run one at a time; were two to overlap, each still reads it whole.
        for row in new_rows:
            cached.rows.append(CachedRow(row.role, row.content, row.tool_calls, row.tool_call_id, row.context))
            cached.last_sequence = row.sequence
        self._by_session[session_id] = cached
        while len(self._by_session) > self.max_sessions:
            self._by_session.popitem(last=False)
        return model_history(cached.rows, system_suffix, latest_user_prefix)
