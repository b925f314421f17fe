"""Subscriptions: listing, updates (cancellation, items, metadata), cancellation, renewals and
failed payments.

Every price is monthly, so a subscription's period is always `PERIOD_SECONDS`; a renewal moves
the period on and bills it with a paid invoice. Whatever one operation changes on a subscription
is announced by one `customer.subscription.updated` (or `.deleted`) event, see `_changing`.
"""

import copy
from contextlib import contextmanager
from typing import Any, Iterator

from local.stripe.core import OPEN_SCHEDULE_STATUSES
from local.stripe.errors import invalid
from local.stripe.events import EventsMixin
from local.stripe.objects import DAY, PERIOD_SECONDS, as_bool, as_int, list_object, merged_metadata, previous_attributes
from local.stripe.phases import proration_behavior
from local.stripe.subscription_items import SubscriptionItemsMixin

SUBSCRIPTION_STATUSES = ("active", "past_due", "unpaid", "canceled", "incomplete", "incomplete_expired", "trialing",
                         "paused")


class SubscriptionsMixin(SubscriptionItemsMixin, EventsMixin):
    def list_subscriptions(self, params: dict[str, Any]) -> dict[str, Any]:
        status = params.get("status")
        if status is not None and status not in (*SUBSCRIPTION_STATUSES, "all", "ended"):
            raise invalid(f"Invalid status: must be one of {', '.join(SUBSCRIPTION_STATUSES)}, all or ended",
                          param="status")
        customer, price = params.get("customer"), params.get("price")

        def wanted(sub: dict[str, Any]) -> bool:
            if customer and sub["customer"] != customer:
                return False
            if price and all(item["price"]["id"] != price for item in sub["items"]["data"]):
                return False
            if status == "all":
                return True
            if status == "ended":
                return sub["status"] in ("canceled", "incomplete_expired")
            if status is None:  # Stripe's default: everything not canceled
                return sub["status"] != "canceled"
            return sub["status"] == status

        return self._page([s for s in self.subscriptions.values() if wanted(s)], params, "/v1/subscriptions")

    def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        return copy.deepcopy(self._get(self.subscriptions, "subscription", subscription_id))

    def update_subscription(self, subscription_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """`cancel_at_period_end`, `cancel_at`, `items` (a new price takes effect at once, prorated
        per `proration_behavior`) and `metadata`."""
        sub = self._get(self.subscriptions, "subscription", subscription_id)
        if sub["status"] == "canceled" and set(params) - {"metadata", "cancellation_details", "expand"}:
            raise invalid("A canceled subscription can only update its cancellation_details and metadata.")
        cancellation = self._requested_cancellation(sub, params)
        changes = self._item_changes(sub, params.get("items"))
        proration = proration_behavior(params.get("proration_behavior"), "proration_behavior")
        metadata = merged_metadata(sub["metadata"], params.get("metadata"))
        now = self.now()
        with self._changing(sub):
            sub["metadata"] = metadata
            if cancellation is not None:
                at_period_end, cancel_at = cancellation
                sub.update(cancel_at_period_end=at_period_end, cancel_at=cancel_at,
                           canceled_at=(sub["canceled_at"] or now) if cancel_at is not None else None)
            if changes is not None:
                self._set_items(sub, changes, proration)
        return copy.deepcopy(sub)

    @staticmethod
    def _requested_cancellation(sub: dict[str, Any], params: dict[str, Any]) -> tuple[bool, int | None] | None:
        """The (cancel_at_period_end, cancel_at) an update asks for; None if it does not touch them."""
        flag, has_cancel_at = params.get("cancel_at_period_end"), "cancel_at" in params
        if flag is None and not has_cancel_at:
            return None
        if sub["schedule"]:
            raise invalid(f"The subscription is managed by the subscription schedule `{sub['schedule']}`, and "
                          f"updating any cancelation behavior directly is not allowed. Please update the schedule "
                          f"instead.")
        if flag is not None and has_cancel_at:
            raise invalid("You may only specify one of these parameters: cancel_at, cancel_at_period_end.",
                          param="cancel_at")
        period_end = sub["current_period_end"]
        if flag is not None:
            at_period_end = as_bool(flag, "cancel_at_period_end")
            return at_period_end, period_end if at_period_end else None
        value = params["cancel_at"]
        if value in ("", None):
            return False, None
        cancel_at = period_end if value in ("min_period_end", "max_period_end") else as_int(value, "cancel_at")
        return cancel_at == period_end, cancel_at

    def cancel_subscription(self, subscription_id: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Cancels at once (`DELETE /v1/subscriptions/{id}`); a schedule driving it is canceled too."""
        sub = self._get(self.subscriptions, "subscription", subscription_id)
        if sub["status"] == "canceled":
            raise invalid(f"This subscription has already been canceled: {subscription_id}.")
        with self._changing(sub):
            schedule = self.schedules.get(sub["schedule"] or "")
            if schedule is not None and schedule["status"] in OPEN_SCHEDULE_STATUSES:
                schedule.update(status="canceled", canceled_at=self.now(), current_phase=None)
                self._emit("subscription_schedule.canceled", schedule)
            self._end_subscription(sub)
        return copy.deepcopy(sub)

    def fail_payment(self, subscription_id: str) -> dict[str, Any]:
        """The renewal charge fails: the subscription becomes `past_due` and `invoice.payment_failed`
        is sent (again with a higher `attempt_count` for the same open invoice). Returns the invoice."""
        self.process_due()
        sub = self._get(self.subscriptions, "subscription", subscription_id)
        if sub["status"] == "canceled":
            raise invalid(f"The subscription {subscription_id} is canceled.")
        with self._changing(sub):
            invoice = self.invoices.get(sub["latest_invoice"] or "")
            if invoice is None or invoice["status"] != "open":
                invoice = self._new_invoice(sub, "subscription_cycle", self._amount(sub), paid=False)
            invoice["attempt_count"] += 1
            invoice["attempted"] = True
            invoice["next_payment_attempt"] = self.now() + 3 * DAY
            sub["status"] = "past_due"
            self._emit("invoice.payment_failed", invoice)
        return copy.deepcopy(invoice)

    @contextmanager
    def _changing(self, sub: dict[str, Any]) -> Iterator[None]:
        """Whatever the block changes on the subscription is announced once at the end:
        `customer.subscription.deleted` if it ended, else `customer.subscription.updated` with the
        old values in `previous_attributes`. Events emitted inside the block come first."""
        before = copy.deepcopy(sub)
        yield
        if sub == before:
            return
        if sub["status"] == "canceled" and before["status"] != "canceled":
            self._emit("customer.subscription.deleted", sub)
        else:
            self._emit("customer.subscription.updated", sub, previous_attributes(before, sub))

    def _new_subscription(self, customer_id: str, items: list[dict[str, Any]],
                          metadata: dict[str, str]) -> dict[str, Any]:
        now = self.now()
        subscription_id = self._new_id("subscription")
        sub = {
            "id": subscription_id, "object": "subscription", "application": None, "billing_cycle_anchor": now,
            "cancel_at": None, "cancel_at_period_end": False, "canceled_at": None,
            "collection_method": "charge_automatically", "created": now, "currency": "usd",
            # Since API version 2025-03-31 the period lives on the items; kept here too for older readers.
            "current_period_start": now, "current_period_end": now + PERIOD_SECONDS,
            "customer": customer_id, "description": None, "ended_at": None,
            "items": list_object([], f"/v1/subscription_items?subscription={subscription_id}"),
            "latest_invoice": None, "livemode": False, "metadata": dict(metadata), "schedule": None,
            "start_date": now, "status": "active", "test_clock": None, "trial_end": None, "trial_start": None,
        }
        sub["items"]["total_count"] = 0
        for item in items:
            self._add_item(sub, item["price"], item["quantity"])
        self.subscriptions[subscription_id] = sub
        return sub

    def _end_subscription(self, sub: dict[str, Any]) -> None:
        now = self.now()
        sub.update(status="canceled", ended_at=now, canceled_at=sub["canceled_at"] or now)

    def _renew(self, sub: dict[str, Any]) -> None:
        start = sub["current_period_end"]
        self._set_period(sub, start, start + PERIOD_SECONDS)
        self._new_invoice(sub, "subscription_cycle", self._amount(sub))

    @staticmethod
    def _set_period(sub: dict[str, Any], start: int, end: int) -> None:
        sub["current_period_start"], sub["current_period_end"] = start, end
        for item in sub["items"]["data"]:
            item["current_period_start"], item["current_period_end"] = start, end
