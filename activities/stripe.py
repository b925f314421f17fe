"""Every Stripe call the subscription workflow makes, one small activity each.

Each write carries an idempotency key that the workflow derives from its own id and the step,
never from the attempt, so a retried activity (a lost response, a worker that died) gets
Stripe's stored answer instead of creating a second schedule, subscription or charge.
Temporal owns retries: the client itself never retries.
"""

import logging
from datetime import datetime, timezone
from typing import Any, Awaitable, Optional, TypeVar

import stripe
from temporalio import activity
from temporalio.exceptions import ApplicationError

from billing.prices import price_ids, tier_for_price
from models.subscription import (
    LIVE_SUBSCRIPTION_STATUSES,
    OPEN_SCHEDULE_STATUSES,
    CancelAtPeriodEndRequest,
    ChangePriceRequest,
    CheckoutRequest,
    EnsureCustomerRequest,
    ReleaseScheduleRequest,
    ScheduleDowngradeRequest,
    StripeBilling,
    StripeSchedule,
    StripeSubscription,
)
from settings import Settings

log = logging.getLogger(__name__)
stripe.enable_telemetry = False  # no request timings sent to Stripe, no id file in the home folder

# Retrying cannot fix these: the request itself is wrong or not allowed.
REFUSED = (stripe.InvalidRequestError, stripe.AuthenticationError, stripe.PermissionError, stripe.CardError,
           stripe.IdempotencyError)


def stripe_client(settings: Settings) -> stripe.StripeClient:
    base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
    return stripe.StripeClient(settings.stripe_api_key or "sk_unset", base_addresses=base,
                               http_client=stripe.HTTPXClient(), max_network_retries=0)


def _as_failure(error: stripe.StripeError, what: str) -> ApplicationError:
    # Stripe's messages name objects, never card data or keys; the request id helps support.
    detail = f"Stripe {what} failed ({type(error).__name__}, request {error.request_id or '-'})"
    if isinstance(error, REFUSED):
        return ApplicationError(f"{detail}: {error.user_message or error}", type="StripeRefused", non_retryable=True)
    return ApplicationError(detail, type="StripeUnavailable")


T = TypeVar("T")


async def _stripe_call(what: str, call: Awaitable[T]) -> T:
    try:
        return await call
    except stripe.StripeError as error:
        raise _as_failure(error, what) from None


def _timestamp(value: Optional[int]) -> Optional[datetime]:
    return datetime.fromtimestamp(value, tz=timezone.utc) if value else None


def _price_id(item: Any) -> str:
    price = item["price"]
    return price if isinstance(price, str) else price["id"]


class StripeActivities:
    def __init__(self, settings: Settings, client: Optional[stripe.StripeClient] = None):
        self.settings = settings
        self.client = client or stripe_client(settings)

    def _tier(self, price_id: str):
        tier = tier_for_price(self.settings, price_id)
        if tier is None:
            log.warning("Stripe price %s maps to no tier", price_id)
        return tier

    @activity.defn
    async def ensure_stripe_customer(self, request: EnsureCustomerRequest) -> str:
        customer = await _stripe_call("customer creation", self.client.v1.customers.create_async(
            params={"metadata": {"user_id": request.user_id}}, options={"idempotency_key": request.idempotency_key}))
        return customer.id

    @activity.defn
    async def fetch_stripe_billing(self, customer_id: str) -> StripeBilling:
        try:
            page = await self.client.v1.subscriptions.list_async(
                params={"customer": customer_id, "status": "all", "limit": 20})
            live = next((s.to_dict() for s in page.data if s["status"] in LIVE_SUBSCRIPTION_STATUSES), None)
            if live is None:
                return StripeBilling()
            schedule = None
            if live.get("schedule"):
                schedule_id = live["schedule"] if isinstance(live["schedule"], str) else live["schedule"]["id"]
                found = await self.client.v1.subscription_schedules.retrieve_async(schedule_id)
                schedule = self._schedule(found.to_dict())
        except stripe.StripeError as error:
            raise _as_failure(error, "subscription lookup") from None
        item = live["items"]["data"][0]
        # Newer Stripe API versions keep the period on the item, older ones on the subscription.
        period_start = item.get("current_period_start") or live.get("current_period_start")
        period_end = item.get("current_period_end") or live.get("current_period_end")
        return StripeBilling(subscription=StripeSubscription(
            id=live["id"], item_id=item["id"], status=live["status"], tier=self._tier(_price_id(item)),
            current_period_end=_timestamp(period_end), current_period_start=_timestamp(period_start),
            cancel_at_period_end=bool(live.get("cancel_at_period_end")),
            schedule=schedule))

    def _schedule(self, schedule: dict[str, Any]) -> StripeSchedule:
        current = schedule.get("current_phase") or {}
        upcoming = [p for p in schedule["phases"]
                    if current.get("end_date") and p["start_date"] >= current["end_date"]]
        next_phase = min(upcoming, key=lambda p: p["start_date"], default=None)
        return StripeSchedule(
            id=schedule["id"], status=schedule["status"],
            next_tier=self._tier(_price_id(next_phase["items"][0])) if next_phase else None,
            next_phase_start=_timestamp(next_phase["start_date"]) if next_phase else None)

    @activity.defn
    async def create_checkout_session(self, request: CheckoutRequest) -> str:
        params: dict[str, Any] = {
            "mode": "subscription", "customer": request.stripe_customer_id,
            "client_reference_id": request.user_id,
            "line_items": [{"price": price_ids(self.settings)[request.tier], "quantity": 1}],
            "success_url": request.success_url,
            "subscription_data": {"metadata": {"user_id": request.user_id}},
            "metadata": {"user_id": request.user_id},
        }
        if request.cancel_url:
            params["cancel_url"] = request.cancel_url
        session = await _stripe_call("checkout", self.client.v1.checkout.sessions.create_async(
            params=params, options={"idempotency_key": request.idempotency_key}))
        return session.url

    @activity.defn
    async def release_subscription_schedule(self, request: ReleaseScheduleRequest) -> bool:
        """Releases the schedule; one Stripe already released, completed or canceled is fine."""
        try:
            schedule = await self.client.v1.subscription_schedules.retrieve_async(request.schedule_id)
            if schedule["status"] not in OPEN_SCHEDULE_STATUSES:
                return False
            await self.client.v1.subscription_schedules.release_async(
                request.schedule_id, options={"idempotency_key": request.idempotency_key})
            return True
        except stripe.InvalidRequestError as error:
            # It may have ended between our read and our release: check before calling it a failure.
            try:
                again = await self.client.v1.subscription_schedules.retrieve_async(request.schedule_id)
            except stripe.StripeError:
                raise _as_failure(error, "schedule release") from None
            if again["status"] not in OPEN_SCHEDULE_STATUSES:
                return False
            raise _as_failure(error, "schedule release") from None
        except stripe.StripeError as error:
            raise _as_failure(error, "schedule release") from None

    @activity.defn
    async def set_cancel_at_period_end(self, request: CancelAtPeriodEndRequest) -> None:
        await _stripe_call("cancellation change", self.client.v1.subscriptions.update_async(
            request.subscription_id, params={"cancel_at_period_end": request.cancel_at_period_end},
            options={"idempotency_key": request.idempotency_key}))

    @activity.defn
    async def change_subscription_price(self, request: ChangePriceRequest) -> None:
        """An upgrade: the new price at once, the difference prorated and invoiced now."""
        await _stripe_call("price change", self.client.v1.subscriptions.update_async(
            request.subscription_id,
            params={"items": [{"id": request.item_id, "price": price_ids(self.settings)[request.tier]}],
                    "proration_behavior": "always_invoice"},
            options={"idempotency_key": request.idempotency_key}))

    @activity.defn
    async def schedule_downgrade(self, request: ScheduleDowngradeRequest) -> str:
        """A two-phase schedule: the current price until the period ends, the lower price after."""
        try:
            schedule = await self.client.v1.subscription_schedules.create_async(
                params={"from_subscription": request.subscription_id},
                options={"idempotency_key": f"{request.idempotency_key}/create"})
            current = schedule.to_dict()["phases"][0]
            await self.client.v1.subscription_schedules.update_async(
                schedule["id"],
                params={
                    "end_behavior": "release",
                    "phases": [
                        {"items": [{"price": _price_id(current["items"][0]), "quantity": 1}],
                         "start_date": current["start_date"], "end_date": current["end_date"]},
                        # Starts where the first ends and lasts one period; then the schedule
                        # lets go and the subscription renews on the lower price.
                        {"items": [{"price": price_ids(self.settings)[request.tier], "quantity": 1}],
                         "duration": {"interval": "month", "interval_count": 1}},
                    ],
                },
                options={"idempotency_key": f"{request.idempotency_key}/phases"})
        except stripe.StripeError as error:
            raise _as_failure(error, "downgrade schedule") from None
        return schedule["id"]
