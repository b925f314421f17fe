"""The builder's chat: one session per (user, agent graph), found again on every open (seed notes §9.2).

Get-or-create is race-safe: two tabs (or a double click) asking at once get the same session. The
graph's ownership is checked before anything is read or written, so a graph id of someone else's
learns nothing and creates nothing. A pointer whose session was deleted is stale: a new session
takes its place.
"""

from typing import Any, Optional

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from agent_graphs.store import GraphNotFound, GraphStore
from conversation.sessions import create_session, owned_session
from models.db import BuilderChatSession, ChatSession, utcnow

# First half of the two-key advisory lock of one (user, graph) pointer: apart from the other
# advisory locks taken on the same database (billing/credits.py uses 7301).
_POINTER_LOCK_NAMESPACE = 7302


async def _pointed_session(db: AsyncSession, user_id: str, graph_id: str) -> Optional[ChatSession]:
    session_id = (await db.execute(select(BuilderChatSession.session_id).where(
        BuilderChatSession.user_id == user_id, BuilderChatSession.graph_id == graph_id))).scalar_one_or_none()
    return await owned_session(db, user_id, session_id) if session_id else None


async def get_or_create_builder_session(db: AsyncSession, graphs: GraphStore, user_id: str, graph_id: str,
                                        title: Optional[str] = None, metadata: Optional[dict[str, Any]] = None,
                                        ) -> tuple[ChatSession, bool]:
    """The user's builder session for the graph, and whether it was created now (with `title` and
    `metadata`; an existing one is returned as it is). Raises `GraphNotFound` when the graph is
    not the user's, before anything is written."""
    if await graphs.get(user_id, graph_id) is None:
        raise GraphNotFound()
    existing = await _pointed_session(db, user_id, graph_id)
    if existing is not None:
        return existing, False
    await db.rollback()  # the lock below is held by a transaction of its own, until its commit
    await db.execute(text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:key))"),
                     {"namespace": _POINTER_LOCK_NAMESPACE, "key": f"{user_id}\n{graph_id}"})
    # Whoever held the lock before us may have just created it.
    existing = await _pointed_session(db, user_id, graph_id)
    if existing is not None:
        await db.commit()
        return existing, False
    session = await create_session(db, user_id, title, metadata or {}, builder_graph_id=graph_id, commit=False)
    await db.flush()
    await db.execute(insert(BuilderChatSession).values(
        user_id=user_id, graph_id=graph_id, session_id=session.id, updated_at=utcnow(),
    ).on_conflict_do_update(index_elements=["user_id", "graph_id"],
                            set_={"session_id": session.id, "updated_at": utcnow()}))
    await db.commit()
    return session, True
