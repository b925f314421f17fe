"""Subscription schedules: made from an existing subscription, then updated with phases,
released, canceled, or completed when their last phase ends.

The phase in force is `_applied_phase[schedule id]`; after an update `phases[0]` is the phase in
progress, and the clock starts each later phase at its `start_date` (see `clock`). The `phases`
parameter itself is read by `local.stripe.phases`.
"""

import copy
from typing import Any

from local.stripe.core import OPEN_SCHEDULE_STATUSES
from local.stripe.errors import invalid, missing
from local.stripe.objects import merged_metadata
from local.stripe.phases import parse_phases, proration_behavior
from local.stripe.subscriptions import SubscriptionsMixin


class SchedulesMixin(SubscriptionsMixin):
    def create_schedule(self, params: dict[str, Any]) -> dict[str, Any]:
        """From an existing subscription (`from_subscription`): one phase, the current period at
        the current items, ending with `release`."""
        subscription_id = params.get("from_subscription")
        if not subscription_id:
            raise invalid("The offline Stripe sandbox creates schedules only from an existing subscription: pass "
                          "from_subscription.", param="from_subscription", code="parameter_missing")
        for key in ("phases", "customer", "start_date"):
            if key in params:
                raise invalid(f"You cannot set `{key}` when `from_subscription` is set.", param=key)
        sub = self.subscriptions.get(subscription_id)
        if sub is None:
            raise missing("subscription", subscription_id, param="from_subscription", status=400)
        if sub["status"] == "canceled":
            raise invalid("You cannot migrate a subscription that has been canceled.", param="from_subscription")
        if sub["schedule"]:
            raise invalid("You cannot migrate a subscription that is already attached to a schedule.",
                          param="from_subscription")
        end_behavior = self._end_behavior(params.get("end_behavior"), "release")
        now = self.now()
        schedule_id = self._new_id("schedule")
        schedule = {
            "id": schedule_id, "object": "subscription_schedule", "application": None,
            "billing_mode": {"type": "flexible"}, "canceled_at": None, "completed_at": None, "created": now,
            "current_phase": None, "customer": sub["customer"],
            "default_settings": {"billing_cycle_anchor": "automatic", "collection_method": "charge_automatically",
                                 "description": None},
            "end_behavior": end_behavior, "livemode": False,
            "metadata": merged_metadata({}, params.get("metadata")),
            "phases": [{
                "start_date": sub["current_period_start"], "end_date": sub["current_period_end"],
                "items": self._phase_items_of(sub), "proration_behavior": "create_prorations", "metadata": {},
                "currency": "usd", "billing_cycle_anchor": None, "description": None, "trial_end": None,
            }],
            "released_at": None, "released_subscription": None, "status": "active", "subscription": subscription_id,
            "test_clock": None,
        }
        self.schedules[schedule_id] = schedule
        self._applied_phase[schedule_id] = 0
        self._refresh_current_phase(schedule)
        with self._changing(sub):
            sub["schedule"] = schedule_id
            self._emit("subscription_schedule.created", schedule)
        return copy.deepcopy(schedule)

    def retrieve_schedule(self, schedule_id: str) -> dict[str, Any]:
        return copy.deepcopy(self._get(self.schedules, "subscription_schedule", schedule_id))

    def list_schedules(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = params.get("customer")
        found = [s for s in self.schedules.values() if not customer or s["customer"] == customer]
        return self._page(found, params, "/v1/subscription_schedules")

    def update_schedule(self, schedule_id: str, params: dict[str, Any],
                        api_version: str | None = None) -> dict[str, Any]:
        """Replaces the phases (from the one in progress on), `end_behavior` and `metadata`. Phases
        that have started by now take effect at once. `api_version` is the request's
        `Stripe-Version` (None: an account default old enough to accept `iterations`)."""
        schedule = self._get(self.schedules, "subscription_schedule", schedule_id)
        self._require_open(schedule, "update")
        api_version = api_version or self._request.api_version
        end_behavior = self._end_behavior(params.get("end_behavior"), schedule["end_behavior"])
        metadata = merged_metadata(schedule["metadata"], params.get("metadata"))
        phases = None
        proration = proration_behavior(params.get("proration_behavior"), "proration_behavior")
        if params.get("phases") is not None:
            current = schedule["phases"][self._applied_phase[schedule_id]]
            phases = parse_phases(params["phases"], current_start=current["start_date"], now=self.now(),
                                  price_exists=self.prices.__contains__, default_proration=proration,
                                  api_version=api_version)
        sub = self.subscriptions[schedule["subscription"]]
        with self._changing(sub):
            schedule.update(end_behavior=end_behavior, metadata=metadata)
            if phases is not None:
                schedule["phases"] = phases
                self._applied_phase[schedule_id] = 0
                if self._phase_items_of(sub) != phases[0]["items"]:
                    self._apply_items(sub, phases[0]["items"], proration)
                self._refresh_current_phase(schedule)
            self._emit("subscription_schedule.updated", schedule)
        # A later phase that starts now (or has already started) takes effect with this request.
        self.process_due()
        return copy.deepcopy(schedule)

    def release_schedule(self, schedule_id: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Detaches the schedule and leaves the subscription as it is."""
        schedule = self._get(self.schedules, "subscription_schedule", schedule_id)
        self._require_open(schedule, "release")
        sub = self.subscriptions[schedule["subscription"]]
        schedule.update(status="released", released_at=self.now(), released_subscription=sub["id"],
                        subscription=None, current_phase=None)
        with self._changing(sub):
            sub["schedule"] = None
            self._emit("subscription_schedule.released", schedule)
        return copy.deepcopy(schedule)

    def cancel_schedule(self, schedule_id: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Cancels the schedule and the subscription it drives."""
        schedule = self._get(self.schedules, "subscription_schedule", schedule_id)
        self._require_open(schedule, "cancel")
        sub = self.subscriptions[schedule["subscription"]]
        schedule.update(status="canceled", canceled_at=self.now(), current_phase=None)
        with self._changing(sub):
            self._emit("subscription_schedule.canceled", schedule)
            if sub["status"] != "canceled":
                self._end_subscription(sub)
        return copy.deepcopy(schedule)

    @staticmethod
    def _require_open(schedule: dict[str, Any], action: str) -> None:
        if schedule["status"] not in OPEN_SCHEDULE_STATUSES:
            raise invalid(f"You cannot {action} a subscription schedule that is currently in the "
                          f"`{schedule['status']}` status.")

    @staticmethod
    def _end_behavior(value: Any, default: str) -> str:
        if value is None:
            return default
        if value not in ("release", "cancel", "none", "renew"):
            raise invalid("Invalid end_behavior: must be one of release, cancel, none or renew", param="end_behavior")
        return value

    def _refresh_current_phase(self, schedule: dict[str, Any]) -> None:
        phase = schedule["phases"][self._applied_phase[schedule["id"]]]
        schedule["current_phase"] = {"start_date": phase["start_date"], "end_date": phase["end_date"]}

    def _apply_items(self, sub: dict[str, Any], items: list[dict[str, Any]], proration: str) -> None:
        """Makes the subscription's items those of a phase, position by position."""
        current = sub["items"]["data"]
        changes: list[dict[str, Any]] = []
        for position, item in enumerate(items):
            item_id = current[position]["id"] if position < len(current) else None
            changes.append({"id": item_id, "price": item["price"], "quantity": item["quantity"], "deleted": False})
        changes += [{"id": extra["id"], "price": None, "quantity": None, "deleted": True}
                    for extra in current[len(items):]]
        self._set_items(sub, changes, proration)

    @staticmethod
    def _phase_items_of(sub: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"price": i["price"]["id"], "quantity": i["quantity"], "metadata": {}} for i in sub["items"]["data"]]

    def _run_schedule(self, schedule: dict[str, Any], sub: dict[str, Any], moment: int) -> None:
        """Starts every phase due by `moment`, then ends the schedule if its last phase is over."""
        phases = schedule["phases"]
        following = self._applied_phase[schedule["id"]] + 1
        while following < len(phases) and phases[following]["start_date"] <= moment:
            self._applied_phase[schedule["id"]] = following
            self._apply_items(sub, phases[following]["items"], phases[following]["proration_behavior"])
            self._refresh_current_phase(schedule)
            following += 1
        if following == len(phases) and phases[-1]["end_date"] <= moment:
            self._complete_schedule(schedule, sub)

    def _complete_schedule(self, schedule: dict[str, Any], sub: dict[str, Any]) -> None:
        schedule.update(status="completed", completed_at=self.now(), current_phase=None)
        sub["schedule"] = None
        self._emit("subscription_schedule.completed", schedule)
        if schedule["end_behavior"] == "cancel":
            self._end_subscription(sub)
