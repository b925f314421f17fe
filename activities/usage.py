"""What each model round cost: a row in Postgres (the record), then the user's spend windows."""

import logging

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from billing.spend import SpendWindows
from models.db import ModelUsage, utcnow
from models.text import storable
from models.turn import RecordUsageRequest

log = logging.getLogger(__name__)


class UsageActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], spend: SpendWindows):
        self.sessions = sessions
        self.spend = spend

    @activity.defn
    async def record_usage(self, request: RecordUsageRequest) -> None:
        usage = request.usage
        async with self.sessions.begin() as db:
            inserted = (await db.execute(insert(ModelUsage).values(
                user_id=request.user_id, session_id=request.session_id, turn_id=request.turn_id,
                round_index=request.round_index, model=storable(request.model), prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens, cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens, cost_microdollars=usage.cost_microdollars,
                created_at=utcnow(),
            ).on_conflict_do_nothing(constraint="uq_model_usage_turn_round").returning(ModelUsage.id))).scalar()
        if inserted is None:
            return  # a retry: counted the first time
        if usage.cost_microdollars is None:
            log.error("no cost reported for turn %s round %s (model %s): not counted",
                      request.turn_id, request.round_index, request.model)
            return
        await self.spend.record(request.user_id, usage.cost_microdollars)
