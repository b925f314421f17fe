"""/api/chat/usage: a user's spend windows (percentages only) and paying to reset the daily one."""

import uuid

from fastapi import APIRouter

from api.auth import CurrentUser
from api.deps import DbDep, RedisDep, SettingsDep
from api.errors import ApiError
from billing import credits
from billing.accounts import user_tier
from billing.spend import SpendWindows, WindowUsage
from models.api import ErrorResponse, UsagePublic, UsageResetResponse, WindowPublic

router = APIRouter(prefix="/api/chat/usage", tags=["usage"])


def public_window(state: WindowUsage) -> WindowPublic | None:
    percent = state.percent_used
    return None if percent is None else WindowPublic(percent_used=percent, resets_at=state.resets_at)


async def public_usage(spend: SpendWindows, user_id: str, tier: str, reset_cost: int) -> UsagePublic:
    windows = await spend.usage(user_id, tier)
    return UsagePublic(daily=public_window(windows["daily"]), weekly=public_window(windows["weekly"]), tier=tier,
                       reset_cost=reset_cost)


@router.get("", response_model=UsagePublic, responses={401: {"model": ErrorResponse}})
async def get_usage(user: CurrentUser, db: DbDep, redis: RedisDep, settings: SettingsDep) -> UsagePublic:
    return await public_usage(SpendWindows(redis, settings), user.id, await user_tier(db, user.id),
                              settings.rate_limit_reset_cost)


@router.post("/reset", response_model=UsageResetResponse,
             responses={400: {"model": ErrorResponse}, 401: {"model": ErrorResponse}, 402: {"model": ErrorResponse}})
async def reset_daily_usage(user: CurrentUser, db: DbDep, redis: RedisDep, settings: SettingsDep) -> UsageResetResponse:
    """Pays `reset_cost` credits to clear the daily window (and takes that spend off the weekly one)."""
    cost = settings.rate_limit_reset_cost
    if cost <= 0:
        raise ApiError(400, "reset_not_available", "Resetting the daily limit is not available.")
    spend = SpendWindows(redis, settings)
    tier = await user_tier(db, user.id)
    daily = (await spend.usage(user.id, tier))["daily"]
    if daily.limit <= 0 or daily.used <= 0:
        raise ApiError(400, "nothing_to_reset", "There is no daily usage to reset.")
    if await credits.balance(db, user.id) < cost:
        raise ApiError(402, "insufficient_credits", f"Resetting costs {cost} credits; the balance is too low.")
    await credits.add_entry(db, user.id, -cost, f"usage-reset:{uuid.uuid4()}", "daily usage reset")
    await db.commit()
    await spend.reset_daily(user.id)
    remaining = await credits.balance(db, user.id)
    return UsageResetResponse(success=True, credits_charged=cost, remaining_balance=remaining,
                              usage=await public_usage(spend, user.id, tier, cost))
