"""What a user spent in one calendar month (UTC), from `model_usage`, the record of spend.

Users see credits, never the provider's raw cost (the percent-only rule of the usage windows):
a credit is a cent, so the month's microdollars are divided by 10,000 and rounded to the
nearest credit, once, on the month's total.
"""

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.db import ModelUsage

MICRODOLLARS_PER_CREDIT = 10_000  # 1 credit = 1 cent = USD 0.01


def month_start(now: datetime) -> datetime:
    now = now.astimezone(timezone.utc)
    return datetime(now.year, now.month, 1, tzinfo=timezone.utc)


def next_month_start(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=timezone.utc)


def credits_from_microdollars(microdollars: int) -> int:
    """Half a credit and more rounds up (integers only: no float ever touches money)."""
    return (max(microdollars, 0) + MICRODOLLARS_PER_CREDIT // 2) // MICRODOLLARS_PER_CREDIT


@dataclass(frozen=True)
class MonthSpend:
    month_start: datetime
    microdollars: int  # for operators and the conversion; never shown to the user

    @property
    def credits_spent(self) -> int:
        return credits_from_microdollars(self.microdollars)


async def month_spend(db: AsyncSession, user_id: str, now: datetime) -> MonthSpend:
    """The calendar month that holds `now`: rounds with no reported cost count nothing, as in the windows."""
    start = month_start(now)
    total = (await db.execute(
        select(func.coalesce(func.sum(ModelUsage.cost_microdollars), 0)).where(
            ModelUsage.user_id == user_id, ModelUsage.created_at >= start,
            ModelUsage.created_at < next_month_start(start)))).scalar_one()
    return MonthSpend(month_start=start, microdollars=int(total))
