"""SubscriptionWorkflow: every change to one user's subscription, `subscription/{user_id}`.

One long-lived workflow per user owns every change, so two browser tabs asking at once are
applied one after the other under a workflow lock, never interleaved. Stripe stays the source
of truth for what is paid: after every change, webhook and timer the workflow reads Stripe and
writes the tier it finds, so a lost or out-of-order webhook cannot leave the tier wrong.
"""

import asyncio
from datetime import datetime, timedelta
from typing import Optional

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import interfaces as act
    from billing.tiers import classify_change, pending_change
    from models.subscription import (
        ApplyTierRequest,
        CancelAtPeriodEndRequest,
        ChangePriceRequest,
        ChangeTierRequest,
        CheckoutRequest,
        EnsureCustomerRequest,
        ReleaseScheduleRequest,
        SaveCustomerRequest,
        ScheduleDowngradeRequest,
        StripeEventNotice,
        StripeSubscription,
        SubscriptionState,
        SubscriptionView,
        Tier,
    )

# Stripe calls: a lost response is retried (with the same idempotency key) a few times, then the
# caller hears "try again" instead of waiting on an outage.
STRIPE = dict(start_to_close_timeout=timedelta(seconds=30), retry_policy=RetryPolicy(
    initial_interval=timedelta(milliseconds=500), maximum_attempts=3, non_retryable_error_types=["StripeRefused"]))
DATABASE = dict(start_to_close_timeout=timedelta(seconds=15), retry_policy=RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=5), maximum_attempts=10))

# Stripe moves a schedule to its next phase shortly after the boundary: look a little later,
# and again every LATE_RECHECK while it is overdue, for at most OVERDUE_LIMIT.
RECONCILE_GRACE = timedelta(minutes=2)
LATE_RECHECK = timedelta(minutes=15)
OVERDUE_LIMIT = timedelta(days=1)
# A Checkout that completes without its webhook arriving is found by these looks at Stripe.
CHECKOUT_FOLLOW_UPS = (timedelta(minutes=10), timedelta(hours=24, minutes=5))

STRIPE_FAILED = "Stripe could not complete the change right now. Please try again or contact support."


def subscription_workflow_id(user_id: str) -> str:
    return f"subscription/{user_id}"


@workflow.defn
class SubscriptionWorkflow:
    @workflow.init
    def __init__(self, state: SubscriptionState) -> None:
        self._state = state
        self._lock = asyncio.Lock()
        self._events: list[StripeEventNotice] = []
        self._events_this_run = 0

    @workflow.run
    async def run(self, state: SubscriptionState) -> None:
        while True:
            await self._wait_for_work()
            async with self._lock:
                events, self._events = self._events, []
                due = [t for t in self._state.reconcile_at if t <= workflow.now()]
                self._state.reconcile_at = [t for t in self._state.reconcile_at if t > workflow.now()]
                if events or due:
                    await self._reconcile_quietly(f"{len(events)} event(s)" if events else "timer")
                if any(e.type == "invoice.payment_failed" for e in events):
                    self._state.payment_failed_at = workflow.now()
                self._state.events_handled += len(events)
                self._events_this_run += len(events)
            if self._events_this_run >= self._state.events_per_run or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._events:  # webhooks that came in meanwhile are handled first, in this run
                    workflow.continue_as_new(self._state)

    async def _wait_for_work(self) -> None:
        """Waits for a webhook or the next time to look at Stripe."""
        wake_at = min(self._state.reconcile_at, default=None)
        timeout = None if wake_at is None else max((wake_at - workflow.now()).total_seconds(), 0.0)
        try:
            # A change that plans an earlier look at Stripe wakes the loop to set the new timer.
            await workflow.wait_condition(
                lambda: bool(self._events) or min(self._state.reconcile_at, default=None) != wake_at,
                timeout=timeout)
        except asyncio.TimeoutError:
            pass

    @workflow.signal
    def stripe_event(self, notice: StripeEventNotice) -> None:
        self._events.append(notice)

    @workflow.query
    def status(self) -> SubscriptionView:
        return self._view()

    @workflow.update
    async def change_tier(self, request: ChangeTierRequest) -> SubscriptionView:
        async with self._lock:
            operation = self._next_operation_key()
            try:
                subscription = await self._reconcile()
                if self._state.tier == "ENTERPRISE":
                    raise ApplicationError("ENTERPRISE subscriptions are managed by an administrator.",
                                           type="ManagedByAdmin", non_retryable=True)
                url = await self._apply(operation, subscription, request)
                if not url:
                    await self._reconcile()
            except ActivityError as failure:
                workflow.logger.warning("subscription change to %s failed: %s", request.tier, failure.cause)
                # Whatever Stripe did before the failure is what the state shows.
                await self._reconcile_quietly("after a failed change")
                raise ApplicationError(STRIPE_FAILED, type="StripeFailed", non_retryable=True) from None
            return self._view(url)

    async def _apply(self, operation: str, subscription: Optional[StripeSubscription],
                     request: ChangeTierRequest) -> str:
        """Makes the change on Stripe; returns a Checkout URL when the user must pay first."""
        change = classify_change(self._state.tier, request.tier, subscription is not None)
        if change == "checkout":
            return await self._checkout(operation, request)
        if subscription is None:
            if change == "cancel":
                # A paid tier an administrator granted: there is nothing on Stripe to wait for.
                await self._apply_tier("FREE")
            return ""
        if self._state.pending_tier == request.tier and change in ("downgrade", "cancel"):
            return ""  # already scheduled (a second tab, a double click)

        # Any earlier pending change gives way to this one.
        schedule = subscription.schedule
        if schedule is not None and schedule.is_open:
            await workflow.execute_activity(
                act.release_subscription_schedule,
                ReleaseScheduleRequest(schedule_id=schedule.id, idempotency_key=f"{operation}/release"), **STRIPE)
        if subscription.cancel_at_period_end and change != "cancel":
            await self._set_cancel_at_period_end(operation, subscription.id, False)

        if change == "upgrade":
            await workflow.execute_activity(act.change_subscription_price, ChangePriceRequest(
                subscription_id=subscription.id, item_id=subscription.item_id, tier=request.tier,
                idempotency_key=f"{operation}/price"), **STRIPE)
        elif change == "downgrade":
            await workflow.execute_activity(act.schedule_downgrade, ScheduleDowngradeRequest(
                subscription_id=subscription.id, tier=request.tier, idempotency_key=f"{operation}/schedule"),
                **STRIPE)
        elif change == "cancel":
            await self._set_cancel_at_period_end(operation, subscription.id, True)
        return ""

    async def _checkout(self, operation: str, request: ChangeTierRequest) -> str:
        if not request.success_url:
            raise ApplicationError("A success_url is needed to start a checkout.", type="MissingRedirect",
                                   non_retryable=True)
        customer_id = await self._customer_id()
        url = await workflow.execute_activity(act.create_checkout_session, CheckoutRequest(
            user_id=self._state.user_id, stripe_customer_id=customer_id, tier=request.tier,
            success_url=request.success_url, cancel_url=request.cancel_url,
            idempotency_key=f"{operation}/checkout"), **STRIPE)
        self._reconcile_later(*(workflow.now() + delay for delay in CHECKOUT_FOLLOW_UPS))
        return url

    async def _apply_tier(self, tier: Tier) -> None:
        self._state.tier = await workflow.execute_activity(
            act.apply_stripe_tier, ApplyTierRequest(user_id=self._state.user_id, tier=tier), **DATABASE)

    async def _set_cancel_at_period_end(self, operation: str, subscription_id: str, value: bool) -> None:
        await workflow.execute_activity(act.set_cancel_at_period_end, CancelAtPeriodEndRequest(
            subscription_id=subscription_id, cancel_at_period_end=value,
            idempotency_key=f"{operation}/cancel-at-period-end-{str(value).lower()}"), **STRIPE)

    async def _customer_id(self) -> str:
        if self._state.stripe_customer_id:
            return self._state.stripe_customer_id
        customer_id = await workflow.execute_activity(
            act.ensure_stripe_customer,
            EnsureCustomerRequest(user_id=self._state.user_id, idempotency_key=f"{self._key_prefix()}/customer"),
            **STRIPE)
        await workflow.execute_activity(
            act.save_stripe_customer,
            SaveCustomerRequest(user_id=self._state.user_id, stripe_customer_id=customer_id), **DATABASE)
        self._state.stripe_customer_id = customer_id
        return customer_id

    async def _reconcile(self) -> Optional[StripeSubscription]:
        """Reads the account and Stripe, writes the tier Stripe says, and notes what is pending."""
        account = await workflow.execute_activity(act.load_account, self._state.user_id, **DATABASE)
        self._state.tier = account.tier
        self._state.stripe_customer_id = self._state.stripe_customer_id or account.stripe_customer_id
        if not self._state.stripe_customer_id:
            self._state.pending_tier = self._state.pending_tier_effective_at = None
            self._state.current_period_start = self._state.current_period_end = None
            return None
        billing = await workflow.execute_activity(act.fetch_stripe_billing, self._state.stripe_customer_id, **STRIPE)
        subscription = billing.subscription
        # Set before the tier is written, so a status read once the tier shows has the period too.
        self._state.current_period_start = subscription.current_period_start if subscription else None
        self._state.current_period_end = subscription.current_period_end if subscription else None
        paid_tier: Optional[Tier] = None
        if subscription is not None and subscription.tier is not None:
            paid_tier = subscription.tier
            self._state.subscription_id = subscription.id
            self._state.payment_failed_at = None if subscription.status == "active" else self._state.payment_failed_at
        elif subscription is None and self._state.subscription_id is not None:
            paid_tier = "FREE"  # the subscription we knew has ended
            self._state.subscription_id = None
        if paid_tier is not None and paid_tier != self._state.tier:
            await self._apply_tier(paid_tier)
        pending_tier, effective_at = pending_change(subscription, self._state.tier)
        self._state.pending_tier, self._state.pending_tier_effective_at = pending_tier, effective_at
        if effective_at is not None:
            self._plan_reconcile_for(effective_at)
        return subscription

    async def _reconcile_quietly(self, reason: str) -> None:
        try:
            await self._reconcile()
        except ActivityError as failure:
            # The next event or timer tries again; the workflow itself must not fail.
            workflow.logger.warning("reconcile (%s) failed: %s", reason, failure.cause)
            self._reconcile_later(workflow.now() + LATE_RECHECK)

    def _plan_reconcile_for(self, effective_at: datetime) -> None:
        now = workflow.now()
        if effective_at + RECONCILE_GRACE > now:
            self._reconcile_later(effective_at + RECONCILE_GRACE)
        elif now - effective_at < OVERDUE_LIMIT:
            self._reconcile_later(now + LATE_RECHECK)
        else:
            workflow.logger.warning("pending change to %s is overdue since %s", self._state.pending_tier,
                                    effective_at.isoformat())

    def _reconcile_later(self, *times: datetime) -> None:
        self._state.reconcile_at = sorted(set(self._state.reconcile_at) | set(times))

    def _key_prefix(self) -> str:
        # The first run's id keeps keys apart from a workflow of the same id started afresh.
        info = workflow.info()
        return f"{info.workflow_id}/{info.first_execution_run_id}"

    def _next_operation_key(self) -> str:
        self._state.operations += 1
        return f"{self._key_prefix()}/op-{self._state.operations}"

    def _view(self, url: str = "") -> SubscriptionView:
        return SubscriptionView(
            tier=self._state.tier, pending_tier=self._state.pending_tier,
            pending_tier_effective_at=self._state.pending_tier_effective_at,
            payment_failed_at=self._state.payment_failed_at, url=url, events_handled=self._state.events_handled,
            current_period_start=self._state.current_period_start, current_period_end=self._state.current_period_end)
