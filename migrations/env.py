import asyncio
import os

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import models.db  # noqa: F401  (registers the tables on SQLModel.metadata)
import models.platform_links  # noqa: F401

config = context.config
target_metadata = SQLModel.metadata


def database_url() -> str:
    # A URL set programmatically (tests, `make dev`) wins over the environment.
    configured = config.get_main_option("sqlalchemy.url")
    if config.attributes.get("explicit_url") or "DATABASE_URL" not in os.environ:
        return configured
    return os.environ["DATABASE_URL"]


def run_migrations(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(database_url())
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_async_migrations())
