"""/api/admin: operators read and reset any user's raw spend and set tiers (role claim `admin`)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from api.auth import AuthenticatedUser, current_user
from api.deps import DbDep, RedisDep, SettingsDep
from api.errors import ApiError
from billing.accounts import set_tier, user_email, user_tier
from billing.spend import SpendWindows
from models.api import AdminResetRequest, AdminUsage, ErrorResponse, SetTierRequest


def require_admin(user: Annotated[AuthenticatedUser, Depends(current_user)]) -> AuthenticatedUser:
    if not user.is_admin:
        raise ApiError(403, "forbidden", "This needs an administrator.")
    return user


# Any user id a token can carry (api/auth.py), short of "/", which cannot be one path segment.
UserId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^/\x00]+$")]

router = APIRouter(prefix="/api/admin/users", tags=["admin"], dependencies=[Depends(require_admin)],
                   responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}})


async def admin_usage(db, redis, settings, user_id: str) -> AdminUsage:
    tier = await user_tier(db, user_id)
    windows = await SpendWindows(redis, settings).usage(user_id, tier)
    return AdminUsage(user_id=user_id, user_email=await user_email(db, user_id), tier=tier,
                      daily_cost_limit_microdollars=windows["daily"].limit,
                      daily_cost_used_microdollars=windows["daily"].used,
                      weekly_cost_limit_microdollars=windows["weekly"].limit,
                      weekly_cost_used_microdollars=windows["weekly"].used)


@router.get("/{user_id}/usage", response_model=AdminUsage)
async def get_user_usage(user_id: UserId, db: DbDep, redis: RedisDep, settings: SettingsDep) -> AdminUsage:
    return await admin_usage(db, redis, settings, user_id)


@router.post("/{user_id}/usage/reset", response_model=AdminUsage)
async def reset_user_usage(user_id: UserId, body: AdminResetRequest, db: DbDep, redis: RedisDep,
                           settings: SettingsDep) -> AdminUsage:
    spend = SpendWindows(redis, settings)
    await spend.reset_daily(user_id)
    if body.reset_weekly:
        await spend.reset_weekly(user_id)
    return await admin_usage(db, redis, settings, user_id)


@router.put("/{user_id}/tier", response_model=AdminUsage)
async def set_user_tier(user_id: UserId, body: SetTierRequest, db: DbDep, redis: RedisDep,
                        settings: SettingsDep) -> AdminUsage:
    await set_tier(db, user_id, body.tier)
    return await admin_usage(db, redis, settings, user_id)
