"""Dependencies shared by the routers: settings and the clients the app opened at start-up."""

from datetime import datetime, timezone
from typing import Annotated, AsyncIterator

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from agent_graphs.store import GraphStore
from settings import Settings
from workspace.storage import WorkspaceStorage

# Paging further than this is no real listing, and past 2**63 PostgreSQL refuses the number.
MAX_OFFSET = 1_000_000


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_tool_names(request: Request) -> tuple[str, ...]:
    return request.app.state.tool_names


def get_temporal(request: Request) -> Client:
    return request.app.state.temporal


def get_redis(request: Request) -> Redis:
    return request.app.state.redis


def get_session_maker(request: Request) -> async_sessionmaker[AsyncSession]:
    return request.app.state.sessions


def get_storage(request: Request) -> WorkspaceStorage:
    return request.app.state.storage


def get_graphs(request: Request) -> GraphStore:
    return request.app.state.graphs


def get_now() -> datetime:
    """The time a request is answered at; a test sets it with `app.dependency_overrides[get_now]`."""
    return datetime.now(timezone.utc)


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as db:
        yield db


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
ToolNamesDep = Annotated[tuple[str, ...], Depends(get_tool_names)]
RedisDep = Annotated[Redis, Depends(get_redis)]
DbDep = Annotated[AsyncSession, Depends(get_db)]
SessionMakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_session_maker)]
StorageDep = Annotated[WorkspaceStorage, Depends(get_storage)]
NowDep = Annotated[datetime, Depends(get_now)]
GraphStoreDep = Annotated[GraphStore, Depends(get_graphs)]
