"""What the billing views add for the front end and operators: this month's spend in credits on
the usage endpoint, the proration credit on the subscription status, and the user's email on
the admin usage view. The API here runs on a clock the test sets."""

from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from api.auth import issue_token
from api.deps import get_now
from api.main import create_app
from local.stack.process import free_port
from tests.integration.test_subscriptions import subscribe
from tests.support.extra_tools import TEST_TOOLS
from tests.support.helpers import marker, new_session, send
from tests.support.scripted_model import text_reply
from tests.support.servers import serve, shutdown
from tests.support.users import User, make_user


class Clock:
    def __init__(self, now: datetime):
        self.now = now


@asynccontextmanager
async def api_at(settings, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    """The API beside the shared one (same worker and stores), answering at `clock.now`."""
    app = create_app(settings, TEST_TOOLS)
    app.dependency_overrides[get_now] = lambda: clock.now
    port = free_port()
    server, task = await serve(app, port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        await shutdown(server, task)


async def session_with_a_turn_costing(http, user, scripted, cost_usd: float) -> str:
    tag = marker()
    scripted.script(tag, text_reply("Spent.", cost=cost_usd))
    session_id = await new_session(http, user)
    await send(http, user, session_id, f"spend {tag}")
    return session_id


async def move_rounds(database_url: str, session_id: str, to: datetime) -> None:
    """As if the session's turn had run at `to` (the worker stamps rows with the real time)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            moved = await connection.execute(text("UPDATE model_usage SET created_at = :to WHERE session_id = :sid"),
                                             {"to": to, "sid": session_id})
        assert moved.rowcount == 1
    finally:
        await engine.dispose()


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


async def test_monthly_spend_counts_only_this_calendar_month_in_credits(http, settings, stack, scripted):
    user = make_user(settings)
    february = await session_with_a_turn_costing(http, user, scripted, 0.0123)  # 12,300 microdollars
    march = await session_with_a_turn_costing(http, user, scripted, 0.0456)  # 45,600 microdollars
    await move_rounds(stack.database_url, february, utc(2031, 2, 28, 23, 59, 59))
    await move_rounds(stack.database_url, march, utc(2031, 3, 1))  # the first instant of March counts in March
    clock = Clock(utc(2031, 3, 20, 15, 30))

    async with api_at(settings, clock) as api:
        async def monthly_spend() -> dict:
            response = await api.get("/api/chat/usage", headers=user.headers)
            assert response.status_code == 200, response.text
            return response.json()["monthly_spend"]

        assert await monthly_spend() == {"credits_spent": 5, "month_start": "2031-03-01T00:00:00Z"}  # 4.56 credits
        clock.now = utc(2031, 2, 10)
        assert await monthly_spend() == {"credits_spent": 1, "month_start": "2031-02-01T00:00:00Z"}  # 1.23
        clock.now = utc(2031, 4, 1)
        assert await monthly_spend() == {"credits_spent": 0, "month_start": "2031-04-01T00:00:00Z"}
        body = (await api.get("/api/chat/usage", headers=user.headers)).json()
    for raw in ("12300", "45600", "0.0456", "microdollars"):
        assert raw not in str(body)  # never the provider's raw cost


@pytest.fixture
def sandbox(stripe_sandbox):
    sandbox = stripe_sandbox[0]
    sandbox.deliver_webhooks = True
    return sandbox


async def subscription_status(api, user: User) -> dict:
    response = await api.get("/api/credits/subscription", headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_proration_credit_is_the_unused_part_of_the_paid_period(http, settings, sandbox, user):
    clock = Clock(datetime.now(timezone.utc))
    async with api_at(settings, clock) as api:
        assert (await subscription_status(api, user))["proration_credit_cents"] == 0  # FREE
        subscription = await subscribe(http, settings, sandbox, user, "PRO")
        start, end = subscription["current_period_start"], subscription["current_period_end"]

        clock.now = datetime.fromtimestamp(start + (end - start) / 4, tz=timezone.utc)
        status = await subscription_status(api, user)
        assert status["tier"] == "PRO" and status["monthly_cost"] == 2_000
        assert status["proration_credit_cents"] == 1_500  # three quarters of the period unused
        clock.now = datetime.fromtimestamp(end, tz=timezone.utc)
        assert (await subscription_status(api, user))["proration_credit_cents"] == 0


async def test_an_admin_granted_paid_tier_has_no_proration_credit(http, settings, user):
    admin = {"Authorization": f"Bearer {issue_token(settings.jwt_secret, 'operator', role='admin')}"}
    assert (await http.put(f"/api/admin/users/{user.id}/tier", json={"tier": "PRO"}, headers=admin)).status_code == 200
    status = (await http.get("/api/credits/subscription", headers=user.headers)).json()
    assert status["tier"] == "PRO" and status["proration_credit_cents"] == 0  # no Stripe period to credit


async def test_the_admin_usage_view_shows_the_users_email_when_known(http, settings):
    admin = {"Authorization": f"Bearer {issue_token(settings.jwt_secret, 'operator', role='admin')}"}
    with_email, without = make_user(settings), make_user(settings)
    with_email.token = issue_token(settings.jwt_secret, with_email.id, issuer=settings.jwt_issuer,
                                   audience=settings.jwt_audience, email=f"{with_email.id}@example.com")
    for person in (with_email, without):
        await new_session(http, person)

    seen = (await http.get(f"/api/admin/users/{with_email.id}/usage", headers=admin)).json()
    assert seen["user_id"] == with_email.id and seen["user_email"] == f"{with_email.id}@example.com"
    assert (await http.get(f"/api/admin/users/{without.id}/usage", headers=admin)).json()["user_email"] is None

    with_email.token = issue_token(settings.jwt_secret, with_email.id, issuer=settings.jwt_issuer,
                                   audience=settings.jwt_audience, email="new@example.com")
    await new_session(http, with_email)
    again = (await http.get(f"/api/admin/users/{with_email.id}/usage", headers=admin)).json()
    assert again["user_email"] == "new@example.com"  # the address the latest token carried


async def test_a_claim_that_is_not_an_email_is_ignored_not_refused(http, settings):
    admin = {"Authorization": f"Bearer {issue_token(settings.jwt_secret, 'operator', role='admin')}"}
    user = make_user(settings)
    user.token = issue_token(settings.jwt_secret, user.id, issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                             email="not an address")
    await new_session(http, user)
    assert (await http.get(f"/api/admin/users/{user.id}/usage", headers=admin)).json()["user_email"] is None
