"""Subscription tiers: their order, their Stripe prices and what a change between two of them is."""

from datetime import datetime
from typing import Literal, Optional

from models.subscription import SelfServiceTier, StripeSubscription, Tier
from settings import Settings

TIER_ORDER: tuple[Tier, ...] = ("FREE", "PRO", "BUSINESS", "ENTERPRISE")
PAID_TIERS: tuple[SelfServiceTier, ...] = ("PRO", "BUSINESS")

Change = Literal["keep", "checkout", "upgrade", "downgrade", "cancel"]


def rank(tier: Tier) -> int:
    return TIER_ORDER.index(tier)


def price_ids(settings: Settings) -> dict[SelfServiceTier, str]:
    return {"PRO": settings.stripe_price_pro, "BUSINESS": settings.stripe_price_business}


def tier_for_price(settings: Settings, price_id: str) -> Optional[Tier]:
    for tier, price in price_ids(settings).items():
        if price == price_id:
            return tier
    return None


def tier_costs(settings: Settings) -> dict[str, int]:
    """Monthly cost of each self-service tier, in cents."""
    return {"FREE": 0, "PRO": settings.tier_cost_cents_pro, "BUSINESS": settings.tier_cost_cents_business}


def classify_change(current: Tier, target: SelfServiceTier, has_subscription: bool) -> Change:
    """What asking for `target` means for a user on `current` (ENTERPRISE is refused earlier)."""
    if target == current:
        return "keep"  # stay: cancel whatever change is pending
    if not has_subscription:
        # FREE, or a paid tier an administrator granted without Stripe: paying starts at Checkout.
        return "cancel" if target == "FREE" else "checkout"
    if target == "FREE":
        return "cancel"
    return "upgrade" if rank(target) > rank(current) else "downgrade"


def pending_change(subscription: Optional[StripeSubscription],
                   current: Tier) -> tuple[Optional[SelfServiceTier], Optional[datetime]]:
    """The change Stripe will make on its own later: a cancellation at the period end, or the
    next phase of a schedule whose price is another tier."""
    if subscription is None:
        return None, None
    if subscription.cancel_at_period_end:
        return "FREE", subscription.current_period_end
    schedule = subscription.schedule
    if (schedule is not None and schedule.status in ("active", "not_started") and schedule.next_tier in PAID_TIERS
            and schedule.next_tier != current):
        return schedule.next_tier, schedule.next_phase_start
    return None, None
