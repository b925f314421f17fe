"""What a turn cost, from `model_usage` (the durable record of every model round)."""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.db import ModelUsage
from models.turn import Usage


async def turn_usage(db: AsyncSession, turn_id: str) -> Usage:
    row = (await db.execute(select(
        func.coalesce(func.sum(ModelUsage.prompt_tokens), 0), func.coalesce(func.sum(ModelUsage.completion_tokens), 0),
        func.coalesce(func.sum(ModelUsage.cache_read_tokens), 0),
        func.coalesce(func.sum(ModelUsage.cache_write_tokens), 0), func.sum(ModelUsage.cost_microdollars),
    ).where(ModelUsage.turn_id == turn_id))).one()
    return Usage(prompt_tokens=row[0], completion_tokens=row[1], cache_read_tokens=row[2], cache_write_tokens=row[3],
                 cost_microdollars=row[4])
