"""What each model round cost: a row in Postgres (the record), then the user's spend windows; and
whether the user may spend more, asked before every model round a turn runs."""

import logging
from typing import Optional

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from billing.accounts import user_tier
from billing.spend import SpendWindows
from models.db import ModelUsage, utcnow
from models.text import storable
from models.turn import RecordUsageRequest, SpendCheck, SpendCheckRequest

log = logging.getLogger(__name__)


class UsageActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], spend: SpendWindows):
        self.sessions = sessions
        self.spend = spend

    async def _spend_check(self, user_id: str, tier: str) -> SpendCheck:
        for window, state in (await self.spend.usage(user_id, tier)).items():
            if state.exhausted:
                return SpendCheck(exhausted_window=window, resets_at=state.resets_at)
        return SpendCheck()

    @activity.defn
    async def check_spend(self, request: SpendCheckRequest) -> SpendCheck:
        async with self.sessions() as db:
            tier = await user_tier(db, request.user_id)
        return await self._spend_check(request.user_id, tier)

    @activity.defn
    async def record_usage(self, request: RecordUsageRequest) -> Optional[SpendCheck]:
        """Counts the round, then answers whether the user may spend more (the check before the
        next round, with no round trip of its own)."""
        usage = request.usage
        async with self.sessions.begin() as db:
            tier = await user_tier(db, request.user_id)
            inserted = (await db.execute(insert(ModelUsage).values(
                user_id=request.user_id, session_id=request.session_id, turn_id=request.turn_id,
                round_index=request.round_index, model=storable(request.model), prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens, cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens, cost_microdollars=usage.cost_microdollars,
                created_at=utcnow(),
            ).on_conflict_do_nothing(constraint="uq_model_usage_turn_round").returning(ModelUsage.id))).scalar()
        if inserted is None:
            pass  # a retry: counted the first time
        elif usage.cost_microdollars is None:
            log.error("no cost reported for turn %s round %s (model %s): not counted",
                      request.turn_id, request.round_index, request.model)
        else:
            await self.spend.record(request.user_id, usage.cost_microdollars)
        return await self._spend_check(request.user_id, tier)
