"""What a requested tier means for each current tier, and what Stripe has pending."""

from datetime import datetime, timezone

import pytest

from billing.redirects import on_origin
from billing.tiers import classify_change, pending_change
from models.subscription import StripeSchedule, StripeSubscription

PERIOD_END = datetime(2027, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("current, target, has_subscription, change", [
    ("FREE", "PRO", False, "checkout"),
    ("FREE", "BUSINESS", False, "checkout"),
    ("FREE", "FREE", False, "keep"),
    ("PRO", "BUSINESS", True, "upgrade"),
    ("BUSINESS", "PRO", True, "downgrade"),
    ("BUSINESS", "FREE", True, "cancel"),
    ("PRO", "PRO", True, "keep"),
    ("PRO", "BUSINESS", False, "checkout"),   # an administrator's PRO: paying starts at Checkout
    ("BUSINESS", "FREE", False, "cancel"),
])
def test_classify_change(current, target, has_subscription, change):
    assert classify_change(current, target, has_subscription) == change


def subscription(**overrides) -> StripeSubscription:
    values = dict(id="sub_1", item_id="si_1", status="active", tier="BUSINESS", current_period_end=PERIOD_END)
    return StripeSubscription(**{**values, **overrides})


def test_pending_change_from_a_cancellation_a_schedule_or_nothing():
    assert pending_change(None, "FREE") == (None, None)
    assert pending_change(subscription(), "BUSINESS") == (None, None)
    assert pending_change(subscription(cancel_at_period_end=True), "BUSINESS") == ("FREE", PERIOD_END)
    schedule = StripeSchedule(id="sched", status="active", next_tier="PRO", next_phase_start=PERIOD_END)
    assert pending_change(subscription(schedule=schedule), "BUSINESS") == ("PRO", PERIOD_END)
    released = schedule.model_copy(update={"status": "released"})
    assert pending_change(subscription(schedule=released), "BUSINESS") == (None, None)
    same_price = schedule.model_copy(update={"next_tier": "BUSINESS"})
    assert pending_change(subscription(schedule=same_price), "BUSINESS") == (None, None)


@pytest.mark.parametrize("url, allowed", [
    ("https://app.example.com/billing/success", True),
    ("https://APP.example.com/x?session={CHECKOUT_SESSION_ID}", True),
    ("http://app.example.com/billing", False),          # another scheme
    ("https://app.example.com.evil.net/", False),
    ("https://evil.net/?next=https://app.example.com", False),
    ("https://app.example.com:8443/", False),
    ("javascript:alert(1)", False),
    ("//app.example.com/", False),
])
def test_checkout_redirects_stay_on_the_front_end_origin(url, allowed):
    assert on_origin(url, "https://app.example.com") is allowed
