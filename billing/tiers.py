"""Subscription rules: the order of the tiers and what a change between two of them is.

Pure functions of their arguments (no settings, no I/O), so the subscription workflow decides
with them and replays the same decisions.
"""

from datetime import datetime
from typing import Literal, Optional

from models.subscription import PAID_TIERS, TIERS, SelfServiceTier, StripeSubscription, Tier

Change = Literal["keep", "checkout", "upgrade", "downgrade", "cancel"]


def rank(tier: Tier) -> int:
    return TIERS.index(tier)


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


def proration_credit_cents(monthly_cost_cents: int, period_start: Optional[datetime],
                           period_end: Optional[datetime], now: datetime) -> int:
    """The unused part of the current period's price, which an upgrade (prorated at once) credits
    against the new price: the cost times the share of the period still to come, to the nearest
    cent. 0 with no paid period (FREE, or a paid tier granted without Stripe)."""
    if monthly_cost_cents <= 0 or period_start is None or period_end is None or period_end <= period_start:
        return 0
    length = int((period_end - period_start).total_seconds())
    unused = min(max(int((period_end - now).total_seconds()), 0), length)
    return (monthly_cost_cents * unused * 2 + length) // (2 * length)


def pending_change(subscription: Optional[StripeSubscription],
                   current: Tier) -> tuple[Optional[SelfServiceTier], Optional[datetime]]:
    """The change Stripe will make on its own later: a cancellation at the period end, or the
    next phase of a schedule whose price is another tier."""
    if subscription is None:
        return None, None
    if subscription.cancel_at_period_end:
        return "FREE", subscription.current_period_end
    schedule = subscription.schedule
    if (schedule is not None and schedule.is_open and schedule.next_tier in PAID_TIERS
            and schedule.next_tier != current):
        return schedule.next_tier, schedule.next_phase_start
    return None, None
