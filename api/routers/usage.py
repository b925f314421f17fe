"""/api/chat/usage: a user's spend windows (percentages only) and paying to reset the daily one."""

import logging
import uuid
from datetime import datetime

from fastapi import APIRouter
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import CurrentUser
from api.deps import DbDep, NowDep, RedisDep, SettingsDep
from api.errors import ApiError
from billing import credits
from billing.accounts import user_tier
from billing.monthly import month_spend
from billing.spend import SpendWindows, WindowUsage
from models.api import ErrorResponse, MonthlySpendPublic, UsagePublic, UsageResetResponse, WindowPublic
from settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/chat/usage", tags=["usage"])

RESET_REFUSALS = {
    400: {"model": ErrorResponse, "description": "`reset_not_available` (resets are off), `no_daily_limit`, or "
                                                 "`not_over_limit` (the daily window is not used up)"},
    401: {"model": ErrorResponse},
    402: {"model": ErrorResponse, "description": "`insufficient_credits`: the balance does not cover the reset"},
    409: {"model": ErrorResponse, "description": "`reset_in_progress`: another reset of this user is running"},
    429: {"model": ErrorResponse, "description": "`reset_limit_reached`: `MAX_DAILY_RESETS` resets today already"},
    503: {"model": ErrorResponse, "description": "`redis_unavailable` (nothing charged) or `reset_failed` "
                                                 "(the credits were refunded); try again shortly"},
}


def public_window(state: WindowUsage) -> WindowPublic | None:
    percent = state.percent_used
    return None if percent is None else WindowPublic(percent_used=percent, resets_at=state.resets_at)


async def public_usage(db: AsyncSession, spend: SpendWindows, user_id: str, tier: str, reset_cost: int,
                       now: datetime) -> UsagePublic:
    windows = await spend.usage(user_id, tier, now)
    month = await month_spend(db, user_id, now)
    return UsagePublic(daily=public_window(windows["daily"]), weekly=public_window(windows["weekly"]), tier=tier,
                       reset_cost=reset_cost,
                       monthly_spend=MonthlySpendPublic(credits_spent=month.credits_spent, month_start=month.month_start))


@router.get("", response_model=UsagePublic, responses={401: {"model": ErrorResponse}})
async def get_usage(user: CurrentUser, db: DbDep, redis: RedisDep, settings: SettingsDep, now: NowDep) -> UsagePublic:
    """The spend windows as percentages, and this calendar month's spend (UTC) in credits."""
    return await public_usage(db, SpendWindows(redis, settings), user.id, await user_tier(db, user.id),
                              settings.rate_limit_reset_cost, now)


def redis_unavailable(failure: RedisError) -> ApiError:
    log.error("daily reset refused, Redis unavailable: %s", type(failure).__name__)
    return ApiError(503, "redis_unavailable", "The usage store did not answer; nothing was charged. Try again shortly.",
                    headers={"Retry-After": "2"})


async def refuse_unless_resettable(spend: SpendWindows, settings: Settings, user_id: str, daily_limit: int,
                                   now: datetime) -> None:
    try:
        daily_used, resets_today = await spend.reset_state(user_id, now)
    except RedisError as failure:
        raise redis_unavailable(failure) from failure
    if settings.max_daily_resets and resets_today >= settings.max_daily_resets:
        raise ApiError(429, "reset_limit_reached",
                       f"The daily limit can be reset at most {settings.max_daily_resets} times a day.")
    if daily_used < daily_limit:
        raise ApiError(400, "not_over_limit", "The daily limit is not reached yet; there is nothing to reset.")


async def pay_and_reset(db: AsyncSession, spend: SpendWindows, user_id: str, cost: int, daily_limit: int,
                        now: datetime) -> None:
    """Debits the cost (only if the balance covers it), then resets; a reset that fails is refunded."""
    charge_key = f"usage-reset:{uuid.uuid4()}"
    covered = await credits.debit_if_covered(db, user_id, cost, charge_key, "daily usage reset")
    await db.commit()
    if not covered:
        raise ApiError(402, "insufficient_credits", f"Resetting costs {cost} credits; the balance is too low.")
    try:
        await spend.paid_daily_reset(user_id, daily_limit, now)
    except RedisError as failure:
        log.error("daily reset failed, refunding its credits: %s", type(failure).__name__)
        await credits.refund(db, user_id, charge_key, "refund: daily usage reset failed")
        await db.commit()
        raise ApiError(503, "reset_failed", "The daily limit could not be reset; the credits were refunded. "
                                            "Try again shortly.", headers={"Retry-After": "2"}) from failure


@router.post("/reset", response_model=UsageResetResponse, responses=RESET_REFUSALS)
async def reset_daily_usage(user: CurrentUser, db: DbDep, redis: RedisDep, settings: SettingsDep,
                            now: NowDep) -> UsageResetResponse:
    """Pays `reset_cost` credits to clear the daily window once it is used up, and takes the daily limit off
    the weekly one. One reset at a time per user, at most `MAX_DAILY_RESETS` a UTC day."""
    cost = settings.rate_limit_reset_cost
    if cost <= 0:
        raise ApiError(400, "reset_not_available", "Resetting the daily limit is not available.")
    spend = SpendWindows(redis, settings)
    tier = await user_tier(db, user.id)
    daily_limit, _ = spend.limits(tier)
    if daily_limit <= 0:
        raise ApiError(400, "no_daily_limit", "There is no daily limit to reset.")
    try:
        lock = await spend.acquire_reset_lock(user.id)
    except RedisError as failure:
        raise redis_unavailable(failure) from failure
    if lock is None:
        raise ApiError(409, "reset_in_progress", "A reset of the daily limit is already in progress.")
    try:
        await refuse_unless_resettable(spend, settings, user.id, daily_limit, now)
        await pay_and_reset(db, spend, user.id, cost, daily_limit, now)
    finally:
        await spend.release_reset_lock(user.id, lock)
    remaining = await credits.balance(db, user.id)
    return UsageResetResponse(success=True, credits_charged=cost, remaining_balance=remaining,
                              usage=await public_usage(db, spend, user.id, tier, cost, now))
