"""The sandbox's state: customers, checkout sessions, subscriptions, schedules, invoices and the
events they cause, on a clock that tests can move forward.

Objects are kept as plain dicts in Stripe's JSON shape, so what a test inspects is exactly what
the API answers. Every public method is one Stripe operation; the HTTP server maps requests to
them, and tests may call them directly. Methods return copies, never the stored objects.

Time: `now()` is the real clock plus an offset. `advance(seconds)` moves the offset and runs,
in time order, everything that falls due on the way: schedule phases starting, schedules ending,
subscriptions renewing or ending. Each API request first catches up the same way, so nothing
due is ever observed undone.
"""

import copy
import itertools
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, TypedDict

from local.stripe.errors import invalid, missing, missing_param
from local.stripe.faults import Fault, FaultList
from local.stripe.idempotency import IdempotencyStore
from local.stripe.objects import (
    DAY,
    PERIOD_SECONDS,
    as_bool,
    as_dict,
    as_int,
    as_list,
    list_object,
    merged_metadata,
    new_id,
    previous_attributes,
    price_object,
)
from local.stripe.schedules import parse_phases, phase_items, proration_behavior
from local.stripe.webhooks import Event, WebhookDispatcher

ID_PREFIXES = {
    "customer": "cus_", "checkout_session": "cs_test_", "subscription": "sub_", "subscription_item": "si_",
    "schedule": "sub_sched_", "invoice": "in_", "event": "evt_",
}
# `count_created` also understands Stripe's object names and the plural of each kind.
KIND_ALIASES = {"subscription_schedule": "schedule", "checkout.session": "checkout_session"}
SUBSCRIPTION_STATUSES = ("active", "past_due", "unpaid", "canceled", "incomplete", "incomplete_expired", "trialing",
                         "paused")
OPEN_SCHEDULE_STATUSES = ("not_started", "active")
# A bound on the clock's work per catch-up, so a bug can never spin forever.
MAX_CLOCK_STEPS = 100_000


class RequestRecord(TypedDict):
    """One API request as the sandbox saw it (for assertions)."""

    method: str
    path: str
    idempotency_key: str | None
    params: dict[str, Any]
    status: int
    replayed: bool  # answered from the idempotency store
    request_id: str
    api_version: str | None  # the request's Stripe-Version header


class PriceChange(TypedDict):
    """A subscription item moving to another price, and how it was prorated."""

    subscription: str
    old_price: str
    new_price: str
    proration_behavior: str
    at: int
    invoice: str | None  # the invoice billing the difference at once (`always_invoice`)


@dataclass
class _RequestContext:
    id: str | None = None
    idempotency_key: str | None = None
    api_version: str | None = None


@dataclass
class _Order:
    """Creation order, so lists are newest first even within one second."""

    counter: Iterator[int] = field(default_factory=itertools.count)
    position: dict[str, int] = field(default_factory=dict)

    def add(self, object_id: str) -> None:
        self.position[object_id] = next(self.counter)

    def newest_first(self, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(objects, key=lambda o: (o["created"], self.position.get(o["id"], 0)), reverse=True)


class StripeSandbox:
    """One in-memory Stripe account in test mode.

    `prices` maps each preconfigured price id to its monthly amount in cents; checkout pages
    live under `public_base_url`; events go to `webhook_url` (None: recorded, never sent)
    signed with `webhook_secret`. Requests must carry `api_key`.
    """

    def __init__(self, api_key: str, webhook_secret: str, prices: dict[str, int], public_base_url: str,
                 webhook_url: str | None = None) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.public_base_url = public_base_url.rstrip("/")
        self._offset = 0.0
        self._pinned: int | None = None  # the moment being processed while the clock catches up
        created = self.now()
        self.prices: dict[str, dict[str, Any]] = {
            price_id: price_object(price_id, amount, created) for price_id, amount in prices.items()}
        self.customers: dict[str, dict[str, Any]] = {}
        self.checkout_sessions: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.schedules: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.events: list[Event] = []
        self.requests: list[RequestRecord] = []
        self.price_changes: list[PriceChange] = []
        # False: events are still recorded (and can be redelivered) but never sent.
        self.deliver_webhooks = True
        self.faults = FaultList()
        self.idempotency = IdempotencyStore()
        self.webhooks = WebhookDispatcher(webhook_secret, webhook_url)
        self._created: Counter[str] = Counter()
        self._order = _Order()
        self._line_items: dict[str, list[dict[str, Any]]] = {}  # checkout session id -> [{price, quantity}]
        self._subscription_metadata: dict[str, dict[str, str]] = {}  # checkout session id -> subscription_data
        self._applied_phase: dict[str, int] = {}  # schedule id -> index of the phase in force
        self._request = _RequestContext()

    # ----------------------------------------------------------------- clock

    def now(self) -> int:
        if self._pinned is not None:
            return self._pinned
        return int(time.time() + self._offset)

    def advance(self, seconds: float) -> list[Event]:
        """Moves the clock forward and runs everything that falls due, in time order. Returns the
        events this caused."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        first = len(self.events)
        self._run_clock(until=int(time.time() + self._offset + seconds))
        self._offset += seconds
        return self.events[first:]

    def process_due(self) -> None:
        """Runs what is due by now (the server calls this before every request)."""
        self._run_clock(until=self.now())

    # ------------------------------------------------------------- webhooks

    @property
    def webhook_url(self) -> str | None:
        return self.webhooks.url

    @webhook_url.setter
    def webhook_url(self, url: str | None) -> None:
        self.webhooks.url = url

    async def flush_webhooks(self, timeout: float = 10.0) -> None:
        """Waits until every queued event has been delivered (or given up on)."""
        await self.webhooks.flush(timeout)

    async def redeliver(self, event_id: str) -> bool:
        """Sends an event again, with the same id, as Stripe's "Resend" does. True if it was
        accepted."""
        return await self.webhooks.send_now(self.event(event_id))

    def event(self, event_id: str) -> Event:
        for event in self.events:
            if event.id == event_id:
                return event
        raise missing("event", event_id)

    def events_of(self, *types: str) -> list[Event]:
        return [e for e in self.events if e.type in types]

    def list_events(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = params.get("type")
        return self._page([dict(e) for e in self.events if not wanted or e.type == wanted], params, "/v1/events")

    def retrieve_event(self, event_id: str) -> dict[str, Any]:
        return copy.deepcopy(dict(self.event(event_id)))

    # ----------------------------------------------------- faults and records

    def inject_fault(self, method: str, path_prefix: str, status: int = 500, count: int = 1,
                     after: bool = False) -> Fault:
        """See `Fault`: the next `count` matching API requests fail with `status`."""
        return self.faults.add(Fault(method, path_prefix, status, count, after))

    def clear_faults(self) -> None:
        self.faults.clear()

    def count_created(self, kind: str) -> int:
        """How many objects of a kind were ever created: "customer", "checkout_session",
        "subscription", "subscription_item", "schedule", "invoice" or "event" (Stripe's object
        names and plurals work too)."""
        kind = KIND_ALIASES.get(kind, kind)
        if kind not in ID_PREFIXES and kind.endswith("s"):
            kind = KIND_ALIASES.get(kind[:-1], kind[:-1])
        if kind not in ID_PREFIXES:
            raise ValueError(f"unknown kind {kind!r}; one of {', '.join(ID_PREFIXES)}")
        return self._created[kind]

    @contextmanager
    def request_context(self, request_id: str | None, idempotency_key: str | None,
                        api_version: str | None) -> Iterator[None]:
        """Events emitted inside name the request that caused them (`event.request`)."""
        saved, self._request = self._request, _RequestContext(request_id, idempotency_key, api_version)
        try:
            yield
        finally:
            self._request = saved

    # ---------------------------------------------------------------- prices

    def retrieve_price(self, price_id: str) -> dict[str, Any]:
        return copy.deepcopy(self._get(self.prices, "price", price_id))

    # ------------------------------------------------------------- customers

    def create_customer(self, params: dict[str, Any]) -> dict[str, Any]:
        metadata = merged_metadata({}, params.get("metadata"))
        customer = self._new_customer(params.get("email"), params.get("name"), metadata)
        for key in ("description", "phone"):
            if key in params:
                customer[key] = params[key] or None
        return copy.deepcopy(customer)

    def retrieve_customer(self, customer_id: str) -> dict[str, Any]:
        return copy.deepcopy(self._get(self.customers, "customer", customer_id))

    def update_customer(self, customer_id: str, params: dict[str, Any]) -> dict[str, Any]:
        customer = self._get(self.customers, "customer", customer_id)
        for key in ("email", "name", "description", "phone"):
            if key in params:
                customer[key] = params[key] or None
        customer["metadata"] = merged_metadata(customer["metadata"], params.get("metadata"))
        return copy.deepcopy(customer)

    def _new_customer(self, email: str | None, name: str | None, metadata: dict[str, str]) -> dict[str, Any]:
        customer_id = self._new_id("customer")
        customer = {
            "id": customer_id, "object": "customer", "address": None, "balance": 0, "created": self.now(),
            "currency": None, "default_source": None, "delinquent": False, "description": None, "email": email,
            "invoice_prefix": customer_id[4:12].upper(),
            "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None},
            "livemode": False, "metadata": metadata, "name": name, "phone": None, "preferred_locales": [],
            "shipping": None, "tax_exempt": "none", "test_clock": None,
        }
        self.customers[customer_id] = customer
        return customer

    # ------------------------------------------------------ checkout sessions

    def create_checkout_session(self, params: dict[str, Any]) -> dict[str, Any]:
        mode = params.get("mode")
        if not mode:
            raise missing_param("mode")
        if mode != "subscription":
            raise invalid(f"The offline Stripe sandbox supports only mode=subscription, not {mode!r}.", param="mode")
        raw_items = as_list(params.get("line_items"), "line_items")
        if not raw_items:
            raise invalid("You must provide at least one recurring price in `subscription` mode when using prices.",
                          param="line_items")
        for i, raw in enumerate(raw_items):
            if "price_data" in as_dict(raw, f"line_items[{i}]"):
                raise invalid("The offline Stripe sandbox only knows its preconfigured prices; pass "
                              "line_items[].price.", param=f"line_items[{i}][price_data]")
        line_items = phase_items(raw_items, "line_items", self.prices.__contains__)
        customer_id, email = params.get("customer") or None, params.get("customer_email") or None
        if customer_id and email:
            raise invalid("You may only specify one of these parameters: customer, customer_email.", param="customer")
        if customer_id and customer_id not in self.customers:
            raise missing("customer", customer_id, param="customer", status=400)
        for key in ("success_url", "cancel_url"):
            url = params.get(key)
            if url is not None and not str(url).startswith(("http://", "https://")):
                raise invalid("Not a valid URL", param=key)
        subscription_data = as_dict(params.get("subscription_data"), "subscription_data")
        now = self.now()
        session_id = self._new_id("checkout_session")
        amount = sum(self.prices[item["price"]]["unit_amount"] * item["quantity"] for item in line_items)
        session = {
            "id": session_id, "object": "checkout.session", "amount_subtotal": amount, "amount_total": amount,
            "cancel_url": params.get("cancel_url"), "client_reference_id": params.get("client_reference_id") or None,
            "created": now, "currency": "usd", "customer": customer_id, "customer_email": email,
            "expires_at": now + DAY, "livemode": False, "metadata": merged_metadata({}, params.get("metadata")),
            "mode": mode, "payment_status": "unpaid", "status": "open", "subscription": None,
            "success_url": params.get("success_url"), "ui_mode": "hosted",
            "url": f"{self.public_base_url}/checkout/{session_id}",
        }
        self.checkout_sessions[session_id] = session
        self._line_items[session_id] = line_items
        self._subscription_metadata[session_id] = merged_metadata({}, subscription_data.get("metadata"),
                                                                  "subscription_data[metadata]")
        return copy.deepcopy(session)

    def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]:
        return copy.deepcopy(self._get(self.checkout_sessions, "checkout.session", session_id))

    def complete_checkout(self, session_id: str) -> dict[str, Any]:
        """The customer pays: an active subscription for one period from now, then
        `customer.subscription.created` and `checkout.session.completed`. Returns the subscription."""
        self.process_due()
        session = self._get(self.checkout_sessions, "checkout.session", session_id)
        if session["status"] != "open":
            raise invalid(f"This Checkout Session is no longer open (status {session['status']}).")
        customer_id = session["customer"] or self._new_customer(session["customer_email"], None, {})["id"]
        subscription = self._new_subscription(customer_id, self._line_items[session_id],
                                              self._subscription_metadata[session_id])
        self._new_invoice(subscription, "subscription_create", self._amount(subscription))
        session.update(customer=customer_id, payment_status="paid", status="complete",
                       subscription=subscription["id"])
        self._emit("customer.subscription.created", subscription)
        self._emit("checkout.session.completed", session)
        return copy.deepcopy(subscription)

    def success_redirect(self, session_id: str) -> str | None:
        """Where the hosted page sends the customer after paying (Stripe fills in the
        `{CHECKOUT_SESSION_ID}` template)."""
        url = self._get(self.checkout_sessions, "checkout.session", session_id)["success_url"]
        return url.replace("{CHECKOUT_SESSION_ID}", session_id) if url else None

    # ---------------------------------------------------------- subscriptions

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

    def _add_item(self, sub: dict[str, Any], price_id: str, quantity: int) -> None:
        sub["items"]["data"].append({
            "id": self._new_id("subscription_item"), "object": "subscription_item", "created": self.now(),
            "current_period_start": sub["current_period_start"], "current_period_end": sub["current_period_end"],
            "metadata": {}, "price": copy.deepcopy(self.prices[price_id]), "quantity": quantity,
            "subscription": sub["id"],
        })
        sub["items"]["total_count"] = len(sub["items"]["data"])

    def _item_changes(self, sub: dict[str, Any], raw: Any) -> list[dict[str, Any]] | None:
        """The `items` parameter, checked: [{id?, price?, quantity?, deleted}] (None: not given)."""
        if raw is None:
            return None
        existing = {item["id"] for item in sub["items"]["data"]}
        changes = []
        for i, entry in enumerate(as_list(raw, "items")):
            entry = as_dict(entry, f"items[{i}]")
            item_id, price = entry.get("id"), entry.get("price")
            if item_id and item_id not in existing:
                raise missing("subscription_item", item_id, param=f"items[{i}][id]", status=400)
            if price and price not in self.prices:
                raise missing("price", price, param=f"items[{i}][price]", status=400)
            if not item_id and not price:
                raise missing_param(f"items[{i}][price]")
            quantity = as_int(entry["quantity"], f"items[{i}][quantity]") if entry.get("quantity") is not None else None
            deleted = as_bool(entry["deleted"], f"items[{i}][deleted]") if entry.get("deleted") is not None else False
            changes.append({"id": item_id, "price": price, "quantity": quantity, "deleted": deleted})
        return changes

    def _set_items(self, sub: dict[str, Any], changes: list[dict[str, Any]], proration: str) -> None:
        """Applies item changes now, records each price move, and with `always_invoice` bills the
        prorated difference for the rest of the period at once."""
        old_amount, now = self._amount(sub), self.now()
        moves = []
        for change in changes:
            item = next((i for i in sub["items"]["data"] if i["id"] == change["id"]), None)
            if item is None:
                self._add_item(sub, change["price"], change["quantity"] or 1)
                continue
            if change["deleted"]:
                sub["items"]["data"].remove(item)
                continue
            if change["price"] and change["price"] != item["price"]["id"]:
                moves.append((item["price"]["id"], change["price"]))
                item["price"] = copy.deepcopy(self.prices[change["price"]])
            if change["quantity"] is not None:
                item["quantity"] = change["quantity"]
        sub["items"]["total_count"] = len(sub["items"]["data"])
        invoice_id = None
        start, end = sub["current_period_start"], sub["current_period_end"]
        remaining = max(end - now, 0) / max(end - start, 1)
        difference = round((self._amount(sub) - old_amount) * remaining)
        if proration == "always_invoice" and difference:
            invoice_id = self._new_invoice(sub, "subscription_update", max(difference, 0))["id"]
        for old, new in moves:
            self.price_changes.append(PriceChange(subscription=sub["id"], old_price=old, new_price=new,
                                                  proration_behavior=proration, at=now, invoice=invoice_id))

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

    @staticmethod
    def _amount(sub: dict[str, Any]) -> int:
        return sum(item["price"]["unit_amount"] * item["quantity"] for item in sub["items"]["data"])

    @staticmethod
    def _phase_items_of(sub: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"price": i["price"]["id"], "quantity": i["quantity"], "metadata": {}} for i in sub["items"]["data"]]

    # ------------------------------------------------------------- schedules

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

    # ---------------------------------------------------------- the clock's work

    def _run_clock(self, until: int) -> None:
        for _ in range(MAX_CLOCK_STEPS):
            moment = self._next_due()
            if moment is None or moment > until:
                return
            self._pinned = moment
            try:
                for sub in list(self.subscriptions.values()):
                    self._run_subscription(sub, moment)
            finally:
                self._pinned = None
        raise RuntimeError("the sandbox clock did not settle")

    def _next_due(self) -> int | None:
        return min((m for m in map(self._due_at, self.subscriptions.values()) if m is not None), default=None)

    def _due_at(self, sub: dict[str, Any]) -> int | None:
        """When something next happens to this subscription: its schedule's next phase or end,
        its cancellation, or its renewal. (An active schedule always belongs to the subscription
        whose `schedule` names it.)"""
        if sub["status"] == "canceled":
            return None
        moments = [sub["current_period_end"]]
        if sub["cancel_at"] is not None:
            moments.append(sub["cancel_at"])
        schedule = self.schedules.get(sub["schedule"] or "")
        if schedule is not None and schedule["status"] == "active":
            phases, applied = schedule["phases"], self._applied_phase[schedule["id"]]
            moments.append(phases[applied + 1]["start_date"] if applied + 1 < len(phases) else phases[-1]["end_date"])
        return min(moments)

    def _run_subscription(self, sub: dict[str, Any], moment: int) -> None:
        """Everything due for one subscription at `moment`, as one change: schedule phases first
        (so a renewal at the same moment bills the new price), then the period end."""
        due = self._due_at(sub)
        if due is None or due > moment:
            return
        schedule = self.schedules.get(sub["schedule"] or "")
        with self._changing(sub):
            if schedule is not None and schedule["status"] == "active":
                self._run_schedule(schedule, sub, moment)
            if sub["status"] == "canceled":
                return
            if sub["cancel_at"] is not None and sub["cancel_at"] <= moment:
                self._end_subscription(sub)
            elif sub["current_period_end"] <= moment:
                self._renew(sub)

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

    # ---------------------------------------------------------------- helpers

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

    def _emit(self, type_: str, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> Event:
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous is not None:
            data["previous_attributes"] = copy.deepcopy(previous)
        queued = self.deliver_webhooks and bool(self.webhook_url)
        event = Event(self._new_id("event"), type_, self.now(), data,
                      {"id": self._request.id, "idempotency_key": self._request.idempotency_key}, int(queued))
        self.events.append(event)
        if queued:
            self.webhooks.enqueue(event)
        return event

    def _new_invoice(self, sub: dict[str, Any], reason: str, amount: int, paid: bool = True) -> dict[str, Any]:
        invoice_id = self._new_id("invoice")
        invoice = {
            "id": invoice_id, "object": "invoice", "amount_due": amount, "amount_paid": amount if paid else 0,
            "amount_remaining": 0 if paid else amount, "attempt_count": 1 if paid else 0, "attempted": paid,
            "billing_reason": reason, "collection_method": "charge_automatically", "created": self.now(),
            "currency": "usd", "customer": sub["customer"], "livemode": False, "next_payment_attempt": None,
            # Since API version 2025-03-31 the subscription is under `parent`; kept at the top too.
            "parent": {"type": "subscription_details", "quote_details": None,
                       "subscription_details": {"metadata": dict(sub["metadata"]), "subscription": sub["id"]}},
            "period_end": sub["current_period_end"], "period_start": sub["current_period_start"],
            "status": "paid" if paid else "open", "subscription": sub["id"], "total": amount,
        }
        self.invoices[invoice_id] = invoice
        sub["latest_invoice"] = invoice_id
        return invoice

    def _page(self, objects: list[dict[str, Any]], params: dict[str, Any], url: str) -> dict[str, Any]:
        limit = as_int(params.get("limit", 10), "limit")
        if not 1 <= limit <= 100:
            raise invalid("This value must be between 1 and 100.", param="limit")
        ordered = self._order.newest_first(objects)
        after = params.get("starting_after")
        if after:
            ids = [o["id"] for o in ordered]
            if after not in ids:
                raise missing("object", after, param="starting_after", status=400)
            ordered = ordered[ids.index(after) + 1:]
        return list_object(copy.deepcopy(ordered[:limit]), url, has_more=len(ordered) > limit)

    def _new_id(self, kind: str) -> str:
        object_id = new_id(ID_PREFIXES[kind])
        self._created[kind] += 1
        self._order.add(object_id)
        return object_id

    @staticmethod
    def _get(store: dict[str, dict[str, Any]], kind: str, object_id: str) -> dict[str, Any]:
        found = store.get(object_id)
        if found is None:
            raise missing(kind, object_id)
        return found


__all__ = ["PriceChange", "RequestRecord", "StripeSandbox"]
