"""The async SQLAlchemy engine and the schema migration entry point."""

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

ROOT = Path(__file__).resolve().parent


@lru_cache
def get_engine(database_url: str) -> AsyncEngine:
    # No pre-ping: it cost a round trip on every checkout (about 5% of a busy worker's CPU). A
    # connection the server dropped fails its first statement instead, is discarded by the pool,
    # and that attempt is retried (activities) or answered 503 (the API); the next one is fresh.
    # hide_parameters: a failed statement's error (logged, and carried into Temporal's history as
    # the activity's failure) names the SQL, never the values, which hold users' messages.
    return create_async_engine(database_url, pool_size=10, max_overflow=10, pool_recycle=1800,
                               hide_parameters=True)


def session_maker(database_url: str) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(get_engine(database_url), expire_on_commit=False)


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url)
    config.attributes["explicit_url"] = True
    return config


def upgrade_schema(database_url: str) -> None:
    """Apply every migration (blocking; runs its own event loop for the async driver)."""
    command.upgrade(alembic_config(database_url), "head")

