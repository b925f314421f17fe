"""The local graph store: agent graphs as rows of `agent_graphs` in this backend's PostgreSQL.

An update is one conditional UPDATE on (id, owner, version), so of two writers that read the same
version only the first saves; the second learns the version it must build on.
"""

import uuid
from typing import Optional

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agent_graphs.store import GraphNotFound, VersionConflict
from models.agent_graph import AgentGraph, GraphContent
from models.db import AgentGraphRecord, utcnow
from models.text import storable, storable_json


def _parse_id(graph_id: str) -> Optional[str]:
    try:
        return str(uuid.UUID(graph_id))
    except ValueError:
        return None


def _graph(record: AgentGraphRecord) -> AgentGraph:
    return AgentGraph(id=record.id, name=record.name, description=record.description, version=record.version,
                      nodes=record.nodes, links=record.links, created_at=record.created_at,
                      updated_at=record.updated_at)


def _columns(content: GraphContent) -> dict:
    # What a model produced may hold text PostgreSQL refuses; the API refuses it before this.
    return {"name": storable(content.name), "description": storable(content.description),
            "nodes": storable_json([n.model_dump(mode="json") for n in content.nodes]),
            "links": storable_json([link.model_dump(mode="json") for link in content.links])}


class LocalGraphStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]):
        self.sessions = sessions

    async def create(self, owner_id: str, content: GraphContent) -> AgentGraph:
        now = utcnow()
        record = AgentGraphRecord(id=str(uuid.uuid4()), owner_id=owner_id, version=1, created_at=now, updated_at=now,
                                  **_columns(content))
        async with self.sessions.begin() as db:
            db.add(record)
        return _graph(record)

    async def get(self, owner_id: str, graph_id: str) -> Optional[AgentGraph]:
        parsed = _parse_id(graph_id)
        if parsed is None:
            return None
        async with self.sessions() as db:
            record = (await db.execute(select(AgentGraphRecord).where(
                AgentGraphRecord.id == parsed, AgentGraphRecord.owner_id == owner_id))).scalar_one_or_none()
        return _graph(record) if record else None

    async def list(self, owner_id: str, limit: int, offset: int) -> tuple[list[AgentGraph], int]:
        async with self.sessions() as db:
            total = (await db.execute(select(func.count()).where(AgentGraphRecord.owner_id == owner_id))).scalar_one()
            records = (await db.execute(
                select(AgentGraphRecord).where(AgentGraphRecord.owner_id == owner_id)
                .order_by(AgentGraphRecord.updated_at.desc(), AgentGraphRecord.id).limit(limit).offset(offset)
            )).scalars().all()
        return [_graph(r) for r in records], total

    async def update(self, owner_id: str, graph_id: str, version: int, content: GraphContent) -> AgentGraph:
        parsed = _parse_id(graph_id)
        if parsed is None:
            raise GraphNotFound()
        async with self.sessions.begin() as db:
            record = (await db.execute(
                update(AgentGraphRecord)
                .where(AgentGraphRecord.id == parsed, AgentGraphRecord.owner_id == owner_id,
                       AgentGraphRecord.version == version)
                .values(version=AgentGraphRecord.version + 1, updated_at=utcnow(), **_columns(content))
                .returning(AgentGraphRecord)
            )).scalar_one_or_none()
            if record is not None:
                return _graph(record)
            current = (await db.execute(select(AgentGraphRecord.version).where(
                AgentGraphRecord.id == parsed, AgentGraphRecord.owner_id == owner_id))).scalar_one_or_none()
        if current is None:
            raise GraphNotFound()
        raise VersionConflict(current)
