"""Real cost per round in Postgres, spend windows in Redis, the limits, and the usage endpoints."""

import asyncio
import logging
from datetime import datetime, timezone

import httpx
from redis.asyncio import Redis

from api.auth import issue_token
from billing import credits
from billing.spend import SpendWindows, daily_reset, reset_count_key, weekly_reset, window_key
from database import session_maker
from local.stack.process import free_port
from stream_relay.connection import redis_client
from tests.support.helpers import db_rows, marker, new_session, send
from tests.support.scripted_model import text_reply
from tests.support.servers import api_with
from tests.support.users import make_user

RESET = "/api/chat/usage/reset"


async def spend_of(settings, user_id: str) -> dict:
    windows = await SpendWindows(redis_client(settings.redis_url), settings).usage(user_id, "FREE")
    return {name: state.used for name, state in windows.items()}


async def test_each_round_records_its_real_cost_and_counts_it(http, user, scripted, stack, settings):
    tag = marker()
    scripted.script(tag, text_reply("Costs a little.", cost=0.000123))
    session_id = await new_session(http, user)
    await send(http, user, session_id, f"hi {tag}")

    rows = await db_rows(stack.database_url, "SELECT model, prompt_tokens, completion_tokens, cost_microdollars, "
                                             "round_index FROM model_usage WHERE session_id = :s", s=session_id)
    assert rows == [{"model": "openai/gpt-test", "prompt_tokens": 10, "completion_tokens": 3,
                     "cost_microdollars": 123, "round_index": 0}]
    assert await spend_of(settings, user.id) == {"daily": 123, "weekly": 123}


async def test_a_round_without_a_reported_cost_is_logged_and_not_counted(http, user, scripted, stack, settings,
                                                                         caplog):
    tag = marker()
    scripted.script(tag, text_reply("No price.", cost=None))
    session_id = await new_session(http, user)
    with caplog.at_level(logging.ERROR):
        await send(http, user, session_id, f"hi {tag}")
        await asyncio.sleep(0.2)
    rows = await db_rows(stack.database_url, "SELECT cost_microdollars FROM model_usage WHERE session_id = :s",
                         s=session_id)
    assert rows == [{"cost_microdollars": None}]
    assert await spend_of(settings, user.id) == {"daily": 0, "weekly": 0}
    assert "no cost reported" in caplog.text


async def test_over_the_limit_is_429_with_resets_at_and_nothing_is_written(http, user, stack, settings):
    session_id = await new_session(http, user)
    spend = SpendWindows(redis_client(settings.redis_url), settings)
    await spend.record(user.id, settings.daily_cost_limit_microdollars)

    for path, body in ((f"/api/chat/sessions/{session_id}/stream", {"message": "hi"}),
                       (f"/api/chat/sessions/{session_id}/turns", {"message": "hi", "wait_seconds": 0})):
        response = await http.post(path, json=body, headers=user.headers)
        assert response.status_code == 429
        error = response.json()["error"]
        assert error["code"] == "usage_limit" and error["details"]["window"] == "daily"
        assert error["details"]["resets_at"] == daily_reset(datetime.now(timezone.utc)).isoformat()
    assert await db_rows(stack.database_url, "SELECT id FROM chat_messages WHERE session_id = :s", s=session_id) == []


async def test_public_usage_shows_percentages_only(http, settings):
    user = make_user(settings)
    await new_session(http, user)
    await SpendWindows(redis_client(settings.redis_url), settings).record(user.id, 125_000)
    body = (await http.get("/api/chat/usage", headers=user.headers)).json()
    assert set(body) == {"daily", "weekly", "tier", "reset_cost", "monthly_spend"}
    assert set(body["daily"]) == {"percent_used", "resets_at"}
    assert body["daily"]["percent_used"] == 25.0 and body["weekly"]["percent_used"] == 5.0
    assert body["tier"] == "FREE" and body["reset_cost"] == settings.rate_limit_reset_cost
    for word in ("used_microdollars", "limit", "cost_used", "125000"):
        assert word not in str(body)


async def grant(settings, user_id: str, amount: int) -> None:
    async with session_maker(settings.database_url).begin() as db:
        await credits.add_entry(db, user_id, amount, f"test-grant:{user_id}:{marker()}", "test")


async def ledger(settings, user_id: str) -> list[int]:
    rows = await db_rows(settings.database_url, "SELECT amount FROM credit_ledger WHERE user_id = :u ORDER BY id",
                         u=user_id)
    return [row["amount"] for row in rows]


def error_code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


async def test_paying_to_reset_the_daily_window(http, settings):
    user = make_user(settings)
    await new_session(http, user)  # grants the welcome credits (100), fewer than the reset cost (500)
    spend = SpendWindows(redis_client(settings.redis_url), settings)
    daily_limit = settings.daily_cost_limit_microdollars

    await spend.record(user.id, daily_limit - 1)
    under = await http.post(RESET, headers=user.headers)
    assert under.status_code == 400 and error_code(under) == "not_over_limit"
    await spend.record(user.id, 1)  # exactly at the limit
    short = await http.post(RESET, headers=user.headers)
    assert short.status_code == 402 and error_code(short) == "insufficient_credits"

    await grant(settings, user.id, 1000)
    paid = await http.post(RESET, headers=user.headers)
    assert paid.status_code == 200, paid.text
    body = paid.json()
    assert body["credits_charged"] == 500 and body["remaining_balance"] == 600
    assert body["usage"]["daily"]["percent_used"] == 0.0
    assert await spend_of(settings, user.id) == {"daily": 0, "weekly": 0}
    assert await ledger(settings, user.id) == [100, 1000, -500]


async def test_a_reset_takes_the_daily_limit_off_the_weekly_window_never_below_zero(http, settings):
    user = make_user(settings)
    await new_session(http, user)
    await grant(settings, user.id, 1000)
    redis = redis_client(settings.redis_url)
    spend = SpendWindows(redis, settings)
    daily_limit = settings.daily_cost_limit_microdollars
    weekly = window_key(user.id, "weekly", datetime.now(timezone.utc))
    await redis.incrby(weekly, 1_000_000)  # spent on earlier days of the week

    await spend.record(user.id, daily_limit + 200_000)  # over the daily limit
    assert (await http.post(RESET, headers=user.headers)).status_code == 200
    # The reset buys one more day: the daily limit comes off the week, not what was spent today.
    assert await spend_of(settings, user.id) == {"daily": 0, "weekly": 1_200_000}

    await spend.record(user.id, daily_limit)
    await redis.set(weekly, 100_000, keepttl=True)  # less left in the week than a day's limit
    assert (await http.post(RESET, headers=user.headers)).status_code == 200
    assert await spend_of(settings, user.id) == {"daily": 0, "weekly": 0}
    assert await redis.ttl(weekly) > 0


async def test_resets_off_or_without_a_daily_limit_are_refused(settings):
    user = make_user(settings)
    async with api_with(settings, rate_limit_reset_cost=0) as client:
        off = await client.post(RESET, headers=user.headers)
        assert off.status_code == 400 and error_code(off) == "reset_not_available"
    async with api_with(settings, daily_cost_limit_microdollars=0) as client:
        unlimited = await client.post(RESET, headers=user.headers)
        assert unlimited.status_code == 400 and error_code(unlimited) == "no_daily_limit"


async def test_resets_are_capped_per_utc_day(settings):
    async with api_with(settings, max_daily_resets=2) as client:
        user = make_user(settings)
        await new_session(client, user)
        await grant(settings, user.id, 2000)
        spend = SpendWindows(redis_client(settings.redis_url), settings)
        for _ in range(2):
            await spend.record(user.id, settings.daily_cost_limit_microdollars)
            assert (await client.post(RESET, headers=user.headers)).status_code == 200
        await spend.record(user.id, settings.daily_cost_limit_microdollars)
        capped = await client.post(RESET, headers=user.headers)
        assert capped.status_code == 429 and error_code(capped) == "reset_limit_reached", capped.text
    assert await ledger(settings, user.id) == [100, 2000, -500, -500]
    now = datetime.now(timezone.utc)
    # The count is the day's own key, and it goes away after the day.
    ttl = await redis_client(settings.redis_url).ttl(reset_count_key(user.id, now))
    left_today = (daily_reset(now) - now).total_seconds()
    assert left_today < ttl <= left_today + 86_401


async def test_one_reset_at_a_time_per_user(http, settings):
    user = make_user(settings)
    await new_session(http, user)
    await grant(settings, user.id, 1000)
    spend = SpendWindows(redis_client(settings.redis_url), settings)
    await spend.record(user.id, settings.daily_cost_limit_microdollars)

    token = await spend.acquire_reset_lock(user.id)  # another reset of this user is in flight
    busy = await http.post(RESET, headers=user.headers)
    assert busy.status_code == 409 and error_code(busy) == "reset_in_progress"
    await spend.release_reset_lock(user.id, "not-the-owner")  # only its owner frees it
    assert (await http.post(RESET, headers=user.headers)).status_code == 409
    await spend.release_reset_lock(user.id, token)
    assert (await http.post(RESET, headers=user.headers)).status_code == 200
    assert await ledger(settings, user.id) == [100, 1000, -500]


async def test_two_concurrent_resets_on_a_balance_covering_one_charge_once(http, settings):
    user = make_user(settings)
    await new_session(http, user)
    await grant(settings, user.id, 400)  # 500 with the welcome credits: one reset
    await SpendWindows(redis_client(settings.redis_url), settings).record(user.id,
                                                                         settings.daily_cost_limit_microdollars)

    answers = await asyncio.gather(*(http.post(RESET, headers=user.headers) for _ in range(2)))
    assert [a.status_code for a in answers].count(200) == 1, [a.text for a in answers]
    refused = next(a for a in answers if a.status_code != 200)
    assert error_code(refused) in ("reset_in_progress", "not_over_limit")
    assert await ledger(settings, user.id) == [100, 400, -500]


async def test_a_redis_failure_during_the_reset_refunds_the_credits(http, settings):
    user = make_user(settings)
    await new_session(http, user)
    await grant(settings, user.id, 1000)
    redis = redis_client(settings.redis_url)
    spend = SpendWindows(redis, settings)
    daily_limit = settings.daily_cost_limit_microdollars
    await spend.record(user.id, daily_limit)
    # Real Redis refuses the reset script: the weekly window is no counter (WRONGTYPE).
    weekly = window_key(user.id, "weekly", datetime.now(timezone.utc))
    await redis.delete(weekly)
    await redis.rpush(weekly, "not a counter")

    failed = await http.post(RESET, headers=user.headers)
    assert failed.status_code == 503 and error_code(failed) == "reset_failed", failed.text
    assert await ledger(settings, user.id) == [100, 1000, -500, 500]
    keys = await db_rows(settings.database_url, "SELECT idempotency_key FROM credit_ledger WHERE user_id = :u "
                                                "AND idempotency_key LIKE 'usage-reset:%' ORDER BY id", u=user.id)
    assert keys[1]["idempotency_key"] == credits.refund_key(keys[0]["idempotency_key"])
    assert await spend.reset_state(user.id, datetime.now(timezone.utc)) == (daily_limit, 0)  # nothing half-reset

    await redis.delete(weekly)  # Redis is well again, and the lock was released
    assert (await http.post(RESET, headers=user.headers)).status_code == 200
    assert await ledger(settings, user.id) == [100, 1000, -500, 500, -500]


async def test_admins_read_raw_usage_reset_it_and_set_tiers(http, settings):
    user = make_user(settings)
    await new_session(http, user)
    admin = {"Authorization": f"Bearer {issue_token(settings.jwt_secret, 'operator', role='admin')}"}
    await SpendWindows(redis_client(settings.redis_url), settings).record(user.id, 700)

    assert (await http.get(f"/api/admin/users/{user.id}/usage", headers=user.headers)).status_code == 403
    raw = (await http.get(f"/api/admin/users/{user.id}/usage", headers=admin)).json()
    assert raw == {"user_id": user.id, "user_email": None, "tier": "FREE", "daily_cost_limit_microdollars": 500_000,
                   "daily_cost_used_microdollars": 700, "weekly_cost_limit_microdollars": 2_500_000,
                   "weekly_cost_used_microdollars": 700}
    pro = (await http.put(f"/api/admin/users/{user.id}/tier", json={"tier": "PRO"}, headers=admin)).json()
    assert pro["tier"] == "PRO" and pro["daily_cost_limit_microdollars"] == 500_000 * settings.tier_multiplier_pro
    assert (await http.get("/api/chat/usage", headers=user.headers)).json()["tier"] == "PRO"
    reset = (await http.post(f"/api/admin/users/{user.id}/usage/reset", json={"reset_weekly": True},
                             headers=admin)).json()
    assert reset["daily_cost_used_microdollars"] == 0 and reset["weekly_cost_used_microdollars"] == 0
    bad = await http.put(f"/api/admin/users/{user.id}/tier", json={"tier": "GOLD"}, headers=admin)
    assert bad.status_code == 422


async def test_counters_agree_with_postgres_after_concurrent_turns(http, scripted, stack, settings):
    user = make_user(settings)
    tag = marker()
    scripted.script(tag, text_reply("Counted.", cost=0.000111, delay=0.01))
    sessions = [await new_session(http, user) for _ in range(6)]
    await asyncio.gather(*(send(http, user, s, f"go {tag}") for s in sessions))
    total = await db_rows(stack.database_url, "SELECT sum(cost_microdollars) AS total FROM model_usage "
                                              "WHERE user_id = :u", u=user.id)
    assert total[0]["total"] == 6 * 111
    assert await spend_of(settings, user.id) == {"daily": 666, "weekly": 666}


async def test_windows_reset_at_utc_midnight_and_monday(settings):
    wednesday = datetime(2026, 11, 25, 15, 30, tzinfo=timezone.utc)
    assert daily_reset(wednesday) == datetime(2026, 11, 26, tzinfo=timezone.utc)
    assert weekly_reset(wednesday) == datetime(2026, 11, 30, tzinfo=timezone.utc)
    assert weekly_reset(datetime(2026, 11, 30, 0, 0, 1, tzinfo=timezone.utc)) == datetime(2026, 12, 7, tzinfo=timezone.utc)
    assert window_key("u", "weekly", wednesday) == "copilot:cost:u:week:2026-W48"


async def test_without_redis_the_check_fails_open(settings, caplog):
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    spend = SpendWindows(dead, settings)
    await spend.check("anyone", "FREE")  # does not raise
    assert "Redis unavailable" in caplog.text
    await dead.aclose()


async def test_a_follow_up_over_the_limit_is_refused_before_it_is_queued(http, user, scripted, stack, settings):
    tag = marker()
    scripted.script(tag, text_reply(" ".join(["slow"] * 60), delay=0.05))
    session_id = await new_session(http, user)
    async with http.stream("POST", f"/api/chat/sessions/{session_id}/stream", json={"message": f"{tag} go"},
                           headers=user.headers) as response:
        assert response.status_code == 200
        await SpendWindows(redis_client(settings.redis_url), settings).record(
            user.id, settings.weekly_cost_limit_microdollars)
        refused = await http.post(f"/api/chat/sessions/{session_id}/stream", json={"message": "and then?"},
                                  headers=user.headers)
        assert refused.status_code == 429 and refused.json()["error"]["details"]["window"] == "daily"
        pending = await http.get(f"/api/chat/sessions/{session_id}/messages/pending", headers=user.headers)
        assert pending.json()["buffer_length"] == 0
        await response.aread()
    rows = await db_rows(stack.database_url, "SELECT content FROM chat_messages WHERE session_id = :s AND role = 'user'",
                         s=session_id)
    assert [r["content"] for r in rows] == [f"{tag} go"]
