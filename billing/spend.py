"""Per-user spend windows in Redis: a daily window (resets 00:00 UTC) and a weekly one (resets
Monday 00:00 UTC), in microdollars. Postgres (`model_usage`) is the record; these counters
are the fast check. Every Redis failure fails open, logged, never blocking a user; only the paid
reset fails closed (its caller refunds the credits).
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal, Optional

from redis.asyncio import Redis
from redis.exceptions import RedisError

from settings import Settings

log = logging.getLogger(__name__)

Window = Literal["daily", "weekly"]

# Take the daily amount off the weekly window as the daily window is cleared, atomically.
_RESET_DAILY = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
redis.call('DEL', KEYS[1])
if used > 0 and redis.call('EXISTS', KEYS[2]) == 1 then
  local weekly = redis.call('DECRBY', KEYS[2], used)
  if weekly < 0 then redis.call('SET', KEYS[2], 0, 'KEEPTTL') end
end
return used
"""

# The paid reset: clears the daily window, takes the daily limit (ARGV[1]) off the weekly window (never below
# 0) and counts the reset (KEYS[3], expiring at ARGV[2]), all at once. It checks before it writes: a script
# that fails half-way keeps the writes it made.
_PAID_DAILY_RESET = """
local weekly = redis.call('GET', KEYS[2])
if weekly and not tonumber(weekly) then return redis.error_reply('the weekly window is not a number') end
redis.call('DEL', KEYS[1])
if weekly and redis.call('DECRBY', KEYS[2], ARGV[1]) < 0 then redis.call('SET', KEYS[2], 0, 'KEEPTTL') end
local resets = redis.call('INCR', KEYS[3])
redis.call('EXPIREAT', KEYS[3], ARGV[2])
return resets
"""

# Deletes the lock only for the request that holds it: one whose lock expired must not free a later one's.
_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Longer than any reset takes (a balance check, a debit and one script), short enough that a crashed
# request's lock does not block the user for long.
RESET_LOCK_SECONDS = 30


def tier_multiplier(settings: Settings, tier: str) -> int:
    return {"FREE": 1, "PRO": settings.tier_multiplier_pro, "BUSINESS": settings.tier_multiplier_business,
            "ENTERPRISE": settings.tier_multiplier_enterprise}.get(tier, 1)


def daily_reset(now: datetime) -> datetime:
    return datetime(now.year, now.month, now.day, tzinfo=timezone.utc) + timedelta(days=1)


def weekly_reset(now: datetime) -> datetime:
    midnight = datetime(now.year, now.month, now.day, tzinfo=timezone.utc)
    return midnight + timedelta(days=7 - now.weekday())


def window_key(user_id: str, window: Window, now: datetime) -> str:
    if window == "daily":
        return f"copilot:cost:{user_id}:day:{now:%Y-%m-%d}"
    year, week, _ = now.isocalendar()
    return f"copilot:cost:{user_id}:week:{year}-W{week:02d}"


def reset_count_key(user_id: str, now: datetime) -> str:
    return f"copilot:reset:{user_id}:day:{now:%Y-%m-%d}"


def reset_lock_key(user_id: str) -> str:
    return f"copilot:reset-lock:{user_id}"


@dataclass(frozen=True)
class WindowUsage:
    used: int
    limit: int  # 0 = unlimited
    resets_at: datetime

    @property
    def exhausted(self) -> bool:
        return self.limit > 0 and self.used >= self.limit

    @property
    def percent_used(self) -> Optional[float]:
        if self.limit <= 0:
            return None
        return 100.0 if self.used >= self.limit else round(100.0 * self.used / self.limit, 1)


class OverSpendLimit(Exception):
    def __init__(self, window: Window, resets_at: datetime):
        super().__init__(f"{window} limit reached")
        self.window = window
        self.resets_at = resets_at


class SpendWindows:
    def __init__(self, redis: Redis, settings: Settings):
        self.redis = redis
        self.settings = settings

    def limits(self, tier: str) -> tuple[int, int]:
        multiplier = tier_multiplier(self.settings, tier)
        return (self.settings.daily_cost_limit_microdollars * multiplier,
                self.settings.weekly_cost_limit_microdollars * multiplier)

    async def record(self, user_id: str, microdollars: int, now: Optional[datetime] = None) -> None:
        now = now or datetime.now(timezone.utc)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for window, resets_at in (("daily", daily_reset(now)), ("weekly", weekly_reset(now))):
                    key = window_key(user_id, window, now)
                    pipe.incrby(key, microdollars)
                    pipe.expireat(key, resets_at + timedelta(days=1))
                await pipe.execute()
        except RedisError as failure:
            log.error("spend not counted, Redis unavailable (model_usage keeps the record): %s",
                      type(failure).__name__)

    async def usage(self, user_id: str, tier: str, now: Optional[datetime] = None) -> dict[Window, WindowUsage]:
        now = now or datetime.now(timezone.utc)
        daily_limit, weekly_limit = self.limits(tier)
        try:
            daily, weekly = await self.redis.mget(window_key(user_id, "daily", now), window_key(user_id, "weekly", now))
        except RedisError as failure:
            log.warning("spend check skipped, Redis unavailable: %s", type(failure).__name__)
            daily = weekly = None
        return {"daily": WindowUsage(int(daily or 0), daily_limit, daily_reset(now)),
                "weekly": WindowUsage(int(weekly or 0), weekly_limit, weekly_reset(now))}

    async def check(self, user_id: str, tier: str) -> None:
        """Raises OverSpendLimit when either window is used up (fails open without Redis)."""
        for window, state in (await self.usage(user_id, tier)).items():
            if state.exhausted:
                raise OverSpendLimit(window, state.resets_at)

    async def reset_daily(self, user_id: str, now: Optional[datetime] = None) -> int:
        now = now or datetime.now(timezone.utc)
        return int(await self.redis.eval(_RESET_DAILY, 2, window_key(user_id, "daily", now),
                                         window_key(user_id, "weekly", now)))

    async def acquire_reset_lock(self, user_id: str) -> Optional[str]:
        """The owner token of the user's reset lock, or None while another reset holds it (raises RedisError)."""
        token = uuid.uuid4().hex
        taken = await self.redis.set(reset_lock_key(user_id), token, nx=True, ex=RESET_LOCK_SECONDS)
        return token if taken else None

    async def release_reset_lock(self, user_id: str, token: str) -> None:
        try:
            await self.redis.eval(_RELEASE_LOCK, 1, reset_lock_key(user_id), token)
        except RedisError as failure:  # it expires by itself
            log.warning("reset lock not released, Redis unavailable: %s", type(failure).__name__)

    async def reset_state(self, user_id: str, now: datetime) -> tuple[int, int]:
        """The daily window's spend and the paid resets made today; raises RedisError (no failing open)."""
        daily, resets = await self.redis.mget(window_key(user_id, "daily", now), reset_count_key(user_id, now))
        return int(daily or 0), int(resets or 0)

    async def paid_daily_reset(self, user_id: str, daily_limit: int, now: datetime) -> int:
        """Clears the daily window and takes `daily_limit` off the weekly one; the resets made today,
        this one included. Raises RedisError: the caller refunds."""
        kept_until = int((daily_reset(now) + timedelta(days=1)).timestamp())
        return int(await self.redis.eval(_PAID_DAILY_RESET, 3, window_key(user_id, "daily", now),
                                         window_key(user_id, "weekly", now), reset_count_key(user_id, now),
                                         daily_limit, kept_until))

    async def reset_weekly(self, user_id: str, now: Optional[datetime] = None) -> None:
        await self.redis.delete(window_key(user_id, "weekly", now or datetime.now(timezone.utc)))
