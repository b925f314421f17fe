"""Real cost per round in Postgres, spend windows in Redis, the limits, and the usage endpoints."""

import asyncio
import logging
from datetime import datetime, timezone

from redis.asyncio import Redis

from api.auth import issue_token
from billing import credits
from billing.spend import SpendWindows, daily_reset, weekly_reset, window_key
from database import session_maker
from local.stack.process import free_port
from stream_relay.connection import redis_client
from tests.support.helpers import db_rows, marker, new_session, send
from tests.support.scripted_model import text_reply
from tests.support.users import make_user


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
    assert set(body) == {"daily", "weekly", "tier", "reset_cost"}
    assert set(body["daily"]) == {"percent_used", "resets_at"}
    assert body["daily"]["percent_used"] == 25.0 and body["weekly"]["percent_used"] == 5.0
    assert body["tier"] == "FREE" and body["reset_cost"] == settings.rate_limit_reset_cost
    for word in ("used_microdollars", "limit", "cost_used", "125000"):
        assert word not in str(body)


async def test_paying_to_reset_the_daily_window(http, settings):
    user = make_user(settings)
    await new_session(http, user)  # grants the welcome credits (100), fewer than the reset cost (500)
    spend = SpendWindows(redis_client(settings.redis_url), settings)

    nothing = await http.post("/api/chat/usage/reset", headers=user.headers)
    assert nothing.status_code == 400 and nothing.json()["error"]["code"] == "nothing_to_reset"
    await spend.record(user.id, 300_000)
    short = await http.post("/api/chat/usage/reset", headers=user.headers)
    assert short.status_code == 402 and short.json()["error"]["code"] == "insufficient_credits"

    async with session_maker(settings.database_url).begin() as db:
        await credits.add_entry(db, user.id, 1000, f"test-grant:{user.id}", "test")
    paid = await http.post("/api/chat/usage/reset", headers=user.headers)
    assert paid.status_code == 200, paid.text
    body = paid.json()
    assert body["credits_charged"] == 500 and body["remaining_balance"] == 600
    assert body["usage"]["daily"]["percent_used"] == 0.0
    assert await spend_of(settings, user.id) == {"daily": 0, "weekly": 0}


async def test_admins_read_raw_usage_reset_it_and_set_tiers(http, settings):
    user = make_user(settings)
    await new_session(http, user)
    admin = {"Authorization": f"Bearer {issue_token(settings.jwt_secret, 'operator', role='admin')}"}
    await SpendWindows(redis_client(settings.redis_url), settings).record(user.id, 700)

    assert (await http.get(f"/api/admin/users/{user.id}/usage", headers=user.headers)).status_code == 403
    raw = (await http.get(f"/api/admin/users/{user.id}/usage", headers=admin)).json()
    assert raw == {"user_id": user.id, "tier": "FREE", "daily_cost_limit_microdollars": 500_000,
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
