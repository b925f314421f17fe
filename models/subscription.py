"""Inputs, outputs and state of the subscription workflow and its Stripe and account activities.

The workflow speaks in tiers only; the activities translate tiers to Stripe price ids and back,
so no price id ever enters workflow history.
"""

from datetime import datetime
from typing import Literal, Optional, get_args

from pydantic import BaseModel, Field

# The tiers, lowest first: the one definition every list of tiers comes from.
Tier = Literal["FREE", "PRO", "BUSINESS", "ENTERPRISE"]
SelfServiceTier = Literal["FREE", "PRO", "BUSINESS"]  # ENTERPRISE is set by an administrator only
PaidTier = Literal["PRO", "BUSINESS"]  # the tiers with a Stripe price
TIERS: tuple[Tier, ...] = get_args(Tier)
PAID_TIERS: tuple[PaidTier, ...] = get_args(PaidTier)

# Stripe's statuses that we act on, in one place.
LIVE_SUBSCRIPTION_STATUSES = ("active", "trialing", "past_due")
OPEN_SCHEDULE_STATUSES = ("active", "not_started")


class SubscriptionState(BaseModel):
    """What the workflow carries from run to run (continue-as-new)."""

    user_id: str
    tier: Tier = "FREE"  # as last read from the database
    stripe_customer_id: Optional[str] = None
    # The Stripe subscription we last saw active: when it disappears, the user is back on FREE.
    subscription_id: Optional[str] = None
    pending_tier: Optional[SelfServiceTier] = None
    pending_tier_effective_at: Optional[datetime] = None
    payment_failed_at: Optional[datetime] = None
    # The live subscription's current billing period, as last read from Stripe (none: no subscription).
    current_period_start: Optional[datetime] = None
    current_period_end: Optional[datetime] = None
    # Times at which to look at Stripe again in case a webhook never arrives.
    reconcile_at: list[datetime] = Field(default_factory=list)
    operations: int = 0  # numbers each change, for its Stripe idempotency keys
    events_handled: int = 0
    # Webhooks one run handles before it continues as new, keeping its history small.
    events_per_run: int = 500


class ChangeTierRequest(BaseModel):
    """A tier change as the API receives it and the workflow's update takes it."""

    tier: SelfServiceTier = Field(description="The tier to move to; the current tier again cancels any pending change.")
    success_url: str = Field(default="", max_length=2000, description="Checkout redirect on success (FREE to paid).")
    cancel_url: str = Field(default="", max_length=2000, description="Checkout redirect when the user backs out.")


class StripeEventNotice(BaseModel):
    """A verified webhook, handed to the user's workflow as a signal. It names what changed;
    the workflow reads the current truth from Stripe rather than trusting event order."""

    event_id: str
    type: str
    created: int


class SubscriptionView(BaseModel):
    """The workflow's answer to a change and to the status query."""

    tier: Tier
    pending_tier: Optional[SelfServiceTier] = None
    pending_tier_effective_at: Optional[datetime] = None
    payment_failed_at: Optional[datetime] = None
    url: str = ""
    events_handled: int = 0
    current_period_start: Optional[datetime] = None
    current_period_end: Optional[datetime] = None


# --- Activities -------------------------------------------------------------------------------


class Account(BaseModel):
    tier: Tier
    stripe_customer_id: Optional[str] = None


class ApplyTierRequest(BaseModel):
    user_id: str
    tier: Tier


class SaveCustomerRequest(BaseModel):
    user_id: str
    stripe_customer_id: str


class EnsureCustomerRequest(BaseModel):
    user_id: str
    idempotency_key: str


class StripeSchedule(BaseModel):
    id: str
    status: str
    next_tier: Optional[Tier] = None  # None: the next phase's price is not one of ours
    next_phase_start: Optional[datetime] = None

    @property
    def is_open(self) -> bool:
        """Still to run or running: it will change the subscription unless released."""
        return self.status in OPEN_SCHEDULE_STATUSES


class StripeSubscription(BaseModel):
    id: str
    item_id: str
    status: str
    tier: Optional[Tier] = None  # None: a price that maps to no tier
    current_period_end: datetime
    current_period_start: Optional[datetime] = None  # optional: histories recorded before it was read lack it
    cancel_at_period_end: bool = False
    schedule: Optional[StripeSchedule] = None


class StripeBilling(BaseModel):
    """A customer's live subscription on Stripe (active, trialing or past due), if any."""

    subscription: Optional[StripeSubscription] = None


class CheckoutRequest(BaseModel):
    user_id: str
    stripe_customer_id: str
    tier: SelfServiceTier
    success_url: str
    cancel_url: str
    idempotency_key: str


class ReleaseScheduleRequest(BaseModel):
    schedule_id: str
    idempotency_key: str


class CancelAtPeriodEndRequest(BaseModel):
    subscription_id: str
    cancel_at_period_end: bool
    idempotency_key: str


class ChangePriceRequest(BaseModel):
    subscription_id: str
    item_id: str
    tier: SelfServiceTier
    idempotency_key: str


class ScheduleDowngradeRequest(BaseModel):
    subscription_id: str
    tier: SelfServiceTier
    idempotency_key: str
