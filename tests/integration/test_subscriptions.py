"""Subscription changes end to end: the API, the user's SubscriptionWorkflow on the Temporal
dev server, the real `stripe` library against the Stripe sandbox, signed webhooks back into
the API, and the tier in Postgres."""

import asyncio
import json
import time
from datetime import datetime

import pytest
import stripe

from api.auth import issue_token
from tests.support.helpers import db_rows, eventually
from tests.support.stripe_keys import FRONTEND_ORIGIN, STRIPE_WEBHOOK_SECRET
from tests.support.users import make_user
from workflows.subscription_client import subscription_view

PATH = "/api/credits/subscription"
REDIRECTS = {"success_url": f"{FRONTEND_ORIGIN}/billing/success", "cancel_url": f"{FRONTEND_ORIGIN}/billing"}
DAY = 24 * 3600


@pytest.fixture
def sandbox(stripe_sandbox):
    sandbox = stripe_sandbox[0]
    sandbox.deliver_webhooks = True
    return sandbox


async def status(http, user) -> dict:
    response = await http.get(PATH, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def change(http, user, tier: str, expect: int = 200) -> dict:
    response = await http.post(PATH, json={"tier": tier, **REDIRECTS}, headers=user.headers)
    assert response.status_code == expect, response.text
    return response.json()


async def db_tier(settings, user) -> str:
    rows = await db_rows(settings.database_url, "SELECT tier FROM users WHERE id = :id", id=user.id)
    return rows[0]["tier"] if rows else "FREE"


async def subscribe(http, settings, sandbox, user, tier: str) -> dict:
    """FREE to a paid tier: Checkout, paid in the sandbox, confirmed by its webhooks."""
    started = await change(http, user, tier)
    assert started["url"].startswith(sandbox.public_base_url) and started["tier"] == "FREE"
    sandbox.complete_checkout(started["url"].rstrip("/").rsplit("/", 1)[-1])
    await sandbox.flush_webhooks()
    await eventually(lambda: db_tier(settings, user), lambda tier_now: tier_now == tier)
    return live_subscription(sandbox, user_customer(sandbox, user))


def user_customer(sandbox, user) -> str:
    return next(c["id"] for c in sandbox.customers.values() if c["metadata"].get("user_id") == user.id)


def live_subscription(sandbox, customer_id: str) -> dict:
    live = [s for s in sandbox.subscriptions.values() if s["customer"] == customer_id and s["status"] != "canceled"]
    assert len(live) == 1, live
    return live[0]


def price_of(subscription: dict) -> str:
    return subscription["items"]["data"][0]["price"]["id"]


def stripe_calls_of(sandbox, user, since: int = 0) -> list[dict]:
    """The requests one user's workflow made (the sandbox is shared by every test)."""
    customers = {c["id"] for c in sandbox.customers.values() if c["metadata"].get("user_id") == user.id}
    return [r for r in sandbox.requests[since:]
            if user.id in (r["idempotency_key"] or "") or (r["params"] or {}).get("customer") in customers]


def schedules_of(sandbox, subscription_id: str) -> list[dict]:
    # A released schedule keeps its subscription's id in `released_subscription`, as on Stripe.
    return [s for s in sandbox.schedules.values()
            if subscription_id in (s["subscription"], s.get("released_subscription"))]


async def test_free_to_paid_starts_checkout_and_the_webhook_sets_the_tier(http, settings, sandbox, user):
    before = await status(http, user)
    assert before == {"tier": "FREE", "monthly_cost": 0, "tier_costs": {"FREE": 0, "PRO": 2000, "BUSINESS": 10000},
                      "proration_credit_cents": 0, "pending_tier": None, "pending_tier_effective_at": None,
                      "url": ""}
    subscription = await subscribe(http, settings, sandbox, user, "PRO")
    assert price_of(subscription) == "price_pro_monthly"
    after = await status(http, user)
    assert after["tier"] == "PRO" and after["monthly_cost"] == 2000 and after["url"] == ""
    rows = await db_rows(settings.database_url, "SELECT stripe_customer_id FROM users WHERE id = :id", id=user.id)
    assert rows[0]["stripe_customer_id"] == subscription["customer"]


async def test_checkout_redirects_must_be_on_the_front_end_origin(http, sandbox, user):
    for field in ("success_url", "cancel_url"):
        body = {"tier": "PRO", **REDIRECTS, field: "https://evil.example.com/phish"}
        response = await http.post(PATH, json=body, headers=user.headers)
        assert response.status_code == 422, response.text
        assert field in response.json()["error"]["message"]
    response = await http.post(PATH, json={"tier": "ENTERPRISE", **REDIRECTS}, headers=user.headers)
    assert response.status_code == 422
    assert not [c for c in sandbox.checkout_sessions.values() if c["client_reference_id"] == user.id]


async def test_upgrade_is_immediate_and_prorated(http, settings, sandbox, user):
    subscription = await subscribe(http, settings, sandbox, user, "PRO")
    upgraded = await change(http, user, "BUSINESS")
    assert upgraded["tier"] == "BUSINESS" and upgraded["pending_tier"] is None and upgraded["url"] == ""
    assert await db_tier(settings, user) == "BUSINESS"
    assert price_of(sandbox.subscriptions[subscription["id"]]) == "price_business_monthly"
    update = [r for r in sandbox.requests if r["path"] == f"/v1/subscriptions/{subscription['id']}"
              and "items" in (r["params"] or {})]
    assert update and update[-1]["params"]["proration_behavior"] == "always_invoice"


async def test_an_upgrade_wins_over_a_pending_cancellation(http, settings, sandbox, user):
    subscription = await subscribe(http, settings, sandbox, user, "PRO")
    assert (await change(http, user, "FREE"))["pending_tier"] == "FREE"
    upgraded = await change(http, user, "BUSINESS")
    assert upgraded["tier"] == "BUSINESS" and upgraded["pending_tier"] is None
    live = sandbox.subscriptions[subscription["id"]]
    assert live["cancel_at_period_end"] is False and price_of(live) == "price_business_monthly"


async def all_events_handled(settings, temporal_client, user) -> None:
    async def counts() -> tuple[int, int]:
        delivered = await db_rows(settings.database_url, "SELECT id FROM stripe_events WHERE user_id = :id", id=user.id)
        view = await subscription_view(temporal_client, user.id)
        return len(delivered), view.events_handled if view else 0

    await eventually(counts, lambda c: c[0] == c[1])


async def test_downgrade_is_a_two_phase_schedule_and_the_tier_waits_for_the_period_end(http, settings, sandbox,
                                                                                        temporal_client, user):
    subscription = await subscribe(http, settings, sandbox, user, "BUSINESS")
    period_end = subscription["items"]["data"][0]["current_period_end"]
    scheduled = await change(http, user, "PRO")
    assert scheduled["tier"] == "BUSINESS" and scheduled["pending_tier"] == "PRO"
    assert datetime.fromisoformat(scheduled["pending_tier_effective_at"]).timestamp() == period_end
    assert await db_tier(settings, user) == "BUSINESS"
    [schedule] = schedules_of(sandbox, subscription["id"])
    assert [p["items"][0]["price"] for p in schedule["phases"]] == ["price_business_monthly", "price_pro_monthly"]
    assert schedule["phases"][0]["end_date"] == period_end == schedule["phases"][1]["start_date"]
    # A page load reads the pending change from the workflow, not from Stripe (once the workflow
    # has handled the webhooks our own calls caused, which look at Stripe).
    await sandbox.flush_webhooks()
    await all_events_handled(settings, temporal_client, user)
    calls = len(sandbox.requests)
    for _ in range(3):
        assert (await status(http, user))["pending_tier"] == "PRO"
    assert stripe_calls_of(sandbox, user, since=calls) == []

    sandbox.advance(31 * DAY)  # the period ends; Stripe moves to the next phase and says so
    await sandbox.flush_webhooks()
    now = await eventually(lambda: status(http, user), lambda s: s["tier"] == "PRO")
    assert now["pending_tier"] is None and now["monthly_cost"] == 2000


async def test_downgrade_then_free_replaces_the_schedule_with_a_cancellation(http, settings, sandbox, user):
    subscription = await subscribe(http, settings, sandbox, user, "BUSINESS")
    await change(http, user, "PRO")
    cancelled = await change(http, user, "FREE")
    assert cancelled["tier"] == "BUSINESS" and cancelled["pending_tier"] == "FREE"
    assert [s["status"] for s in schedules_of(sandbox, subscription["id"])] == ["released"]
    live = sandbox.subscriptions[subscription["id"]]
    assert live["cancel_at_period_end"] is True and live["schedule"] is None

    sandbox.advance(31 * DAY)
    await sandbox.flush_webhooks()
    await eventually(lambda: status(http, user), lambda s: s["tier"] == "FREE" and s["pending_tier"] is None)
    assert await db_tier(settings, user) == "FREE"


async def test_asking_for_the_current_tier_cancels_what_is_pending(http, settings, sandbox, user):
    subscription = await subscribe(http, settings, sandbox, user, "BUSINESS")
    await change(http, user, "PRO")
    kept = await change(http, user, "BUSINESS")  # "upgrade back" while the downgrade is pending
    assert kept["tier"] == "BUSINESS" and kept["pending_tier"] is None
    assert [s["status"] for s in schedules_of(sandbox, subscription["id"])] == ["released"]
    assert (await change(http, user, "BUSINESS"))["pending_tier"] is None  # nothing pending: still fine

    await change(http, user, "FREE")
    assert sandbox.subscriptions[subscription["id"]]["cancel_at_period_end"] is True
    kept = await change(http, user, "BUSINESS")
    assert kept["pending_tier"] is None and sandbox.subscriptions[subscription["id"]]["cancel_at_period_end"] is False


async def test_a_schedule_stripe_already_released_is_not_an_error(http, settings, sandbox, user):
    subscription = await subscribe(http, settings, sandbox, user, "BUSINESS")
    await change(http, user, "PRO")
    [schedule] = schedules_of(sandbox, subscription["id"])
    sandbox.deliver_webhooks = False  # released in Stripe's dashboard; we have not heard of it
    sandbox.release_schedule(schedule["id"])
    kept = await change(http, user, "BUSINESS")
    assert kept["pending_tier"] is None and schedule["status"] == "released"


async def test_two_tabs_asking_for_the_same_downgrade_make_one_schedule(http, settings, sandbox, user):
    subscription = await subscribe(http, settings, sandbox, user, "BUSINESS")
    first, second = await asyncio.gather(change(http, user, "PRO"), change(http, user, "PRO"))
    assert first["pending_tier"] == second["pending_tier"] == "PRO"
    assert len(schedules_of(sandbox, subscription["id"])) == 1


async def test_a_lost_stripe_response_is_retried_with_the_same_key(http, settings, sandbox, user):
    subscription = await subscribe(http, settings, sandbox, user, "BUSINESS")
    # Stripe creates the schedule, then the answer is lost (500); the retry gets Stripe's stored answer.
    sandbox.inject_fault("POST", "/v1/subscription_schedules", status=500, count=1, after=True)
    scheduled = await change(http, user, "PRO")
    assert scheduled["pending_tier"] == "PRO"
    assert len(schedules_of(sandbox, subscription["id"])) == 1
    creates = [r for r in sandbox.requests if r["path"] == "/v1/subscription_schedules"
               and r["params"].get("from_subscription") == subscription["id"]]
    assert len(creates) == 2 and creates[0]["idempotency_key"] == creates[1]["idempotency_key"]


async def test_stripe_failing_is_a_502_and_the_state_stays_what_stripe_has(http, settings, sandbox, user):
    subscription = await subscribe(http, settings, sandbox, user, "PRO")
    sandbox.inject_fault("POST", f"/v1/subscriptions/{subscription['id']}", status=500, count=10)
    response = await http.post(PATH, json={"tier": "BUSINESS", **REDIRECTS}, headers=user.headers)
    assert response.status_code == 502, response.text
    assert "contact support" in response.json()["error"]["message"].lower()
    sandbox.clear_faults()
    assert price_of(sandbox.subscriptions[subscription["id"]]) == "price_pro_monthly"
    assert await db_tier(settings, user) == "PRO"
    assert (await status(http, user))["pending_tier"] is None
    assert (await change(http, user, "BUSINESS"))["tier"] == "BUSINESS"  # and it works once Stripe is back


async def test_enterprise_is_changed_only_by_administrators(http, settings, sandbox, user):
    admin = issue_token(settings.jwt_secret, "ops-admin", role="admin")
    response = await http.put(f"/api/admin/users/{user.id}/tier", json={"tier": "ENTERPRISE"},
                              headers={"Authorization": f"Bearer {admin}"})
    assert response.status_code == 200, response.text
    calls = len(sandbox.requests)
    for tier in ("FREE", "PRO", "BUSINESS"):
        response = await http.post(PATH, json={"tier": tier, **REDIRECTS}, headers=user.headers)
        assert response.status_code == 403, response.text
        assert "administrator" in response.json()["error"]["message"]
    assert stripe_calls_of(sandbox, user, since=calls) == [] and await db_tier(settings, user) == "ENTERPRISE"


async def test_an_admin_granted_paid_tier_goes_to_free_at_once(http, settings, user):
    admin = issue_token(settings.jwt_secret, "ops-admin", role="admin")
    await http.put(f"/api/admin/users/{user.id}/tier", json={"tier": "PRO"}, headers={"Authorization": f"Bearer {admin}"})
    assert (await change(http, user, "FREE"))["tier"] == "FREE"
    assert await db_tier(settings, user) == "FREE"


def signed(payload: str, secret: str = STRIPE_WEBHOOK_SECRET) -> dict:
    timestamp = int(time.time())
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{payload}", secret)
    return {"stripe-signature": f"t={timestamp},v1={signature}", "content-type": "application/json"}


async def signals_received(temporal_client, user) -> int:
    handle = temporal_client.get_workflow_handle(f"subscription/{user.id}")
    history = await handle.fetch_history()
    return sum(1 for e in history.events if e.HasField("workflow_execution_signaled_event_attributes"))


async def test_a_replayed_webhook_changes_nothing(http, settings, sandbox, temporal_client, user):
    await subscribe(http, settings, sandbox, user, "PRO")
    customer_id = user_customer(sandbox, user)
    created = next(e for e in sandbox.events if e["type"] == "customer.subscription.created"
                   and e["data"]["object"]["customer"] == customer_id)
    await change(http, user, "BUSINESS")
    await sandbox.flush_webhooks()  # the upgrade's own webhooks are in before counting
    await all_events_handled(settings, temporal_client, user)
    signals = await signals_received(temporal_client, user)
    await sandbox.redeliver(created["id"])
    await sandbox.flush_webhooks()
    payload = json.dumps(created)
    response = await http.post("/api/credits/stripe_webhook", content=payload, headers=signed(payload))
    assert response.status_code == 200 and response.json()["outcome"] == "duplicate"
    assert await signals_received(temporal_client, user) == signals
    assert await db_tier(settings, user) == "BUSINESS"


async def test_a_forged_webhook_is_refused_and_nothing_is_done(http, settings, sandbox, user):
    await subscribe(http, settings, sandbox, user, "PRO")
    customer_id = user_customer(sandbox, user)
    forged = json.dumps({"id": "evt_forged_1", "object": "event", "type": "customer.subscription.deleted",
                         "created": int(time.time()), "data": {"object": {"id": "sub_x", "customer": customer_id}}})
    for headers in (signed(forged, "whsec_wrong_secret"), {"content-type": "application/json"},
                    {"stripe-signature": "t=1,v1=00", "content-type": "application/json"}):
        response = await http.post("/api/credits/stripe_webhook", content=forged, headers=headers)
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_signature"
    assert await db_rows(settings.database_url, "SELECT id FROM stripe_events WHERE id = 'evt_forged_1'") == []
    assert await db_tier(settings, user) == "PRO"


async def test_schedule_updated_events_are_ignored(http, settings, sandbox, user):
    user_with_customer = make_user(settings)
    await subscribe(http, settings, sandbox, user_with_customer, "PRO")
    payload = json.dumps({"id": "evt_sched_upd_1", "object": "event", "type": "subscription_schedule.updated",
                          "created": int(time.time()),
                          "data": {"object": {"id": "sub_sched_x", "customer": user_customer(sandbox, user_with_customer)}}})
    response = await http.post("/api/credits/stripe_webhook", content=payload, headers=signed(payload))
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"


async def test_a_failed_payment_reaches_the_workflow(http, settings, sandbox, temporal_client, user):
    subscription = await subscribe(http, settings, sandbox, user, "PRO")
    sandbox.fail_payment(subscription["id"])
    await sandbox.flush_webhooks()
    view = await eventually(lambda: subscription_view(temporal_client, user.id),
                            lambda v: v is not None and v.payment_failed_at is not None)
    assert view.tier == "PRO" and await db_tier(settings, user) == "PRO"  # past due keeps the tier


async def test_subscription_endpoints_need_a_token(http):
    assert (await http.get(PATH)).status_code == 401
    assert (await http.post(PATH, json={"tier": "PRO"})).status_code == 401
