"""Where agent graphs live, behind one interface: the local PostgreSQL store by default; the
agent platform's own graph API can take its place by configuration (`GRAPH_STORE`).

Every call names the owner: a graph of someone else's is the same as no graph at all.
"""

from typing import Optional, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.agent_graph import AgentGraph, GraphContent
from settings import Settings


class GraphNotFound(Exception):
    """No such graph of this owner's (missing, or someone else's: the two look the same)."""


class VersionConflict(Exception):
    """The update named a version that is no longer the graph's latest."""

    def __init__(self, current_version: int):
        super().__init__(f"the graph is at version {current_version}")
        self.current_version = current_version


class GraphStore(Protocol):
    async def create(self, owner_id: str, content: GraphContent) -> AgentGraph:
        """Saves a new graph at version 1."""

    async def get(self, owner_id: str, graph_id: str) -> Optional[AgentGraph]:
        """The graph's latest version, or None when the owner has no such graph."""

    async def list(self, owner_id: str, limit: int, offset: int) -> tuple[list[AgentGraph], int]:
        """A page of the owner's graphs, most recently changed first, and how many there are."""

    async def update(self, owner_id: str, graph_id: str, version: int, content: GraphContent) -> AgentGraph:
        """Replaces the graph's content if `version` is still its latest, saving it as the next
        version. Raises `GraphNotFound`, or `VersionConflict` when `version` is stale."""


def open_graph_store(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> GraphStore:
    """The store `GRAPH_STORE` names (only `local` exists yet)."""
    from agent_graphs.local_store import LocalGraphStore

    if settings.graph_store == "local":
        return LocalGraphStore(sessions)
    raise ValueError(f"unknown GRAPH_STORE {settings.graph_store!r}")
