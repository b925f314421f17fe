"""The sandbox's shared stores and the plumbing every resource uses: ids, lookups, newest-first
pages and the reading of the clock.

Objects are kept as plain dicts in Stripe's JSON shape, so what a test inspects is exactly what
the API answers. Each resource's operations live in a mixin over `SandboxCore` (customers,
checkout sessions, subscriptions, schedules, events, the clock); `state.StripeSandbox` combines
them. Methods return copies, never the stored objects.
"""

import copy
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator, TypedDict

from local.stripe.errors import invalid, missing
from local.stripe.faults import FaultList
from local.stripe.idempotency import IdempotencyStore
from local.stripe.objects import as_int, list_object, new_id, price_object
from local.stripe.webhooks import Event, WebhookDispatcher

ID_PREFIXES = {
    "customer": "cus_", "checkout_session": "cs_test_", "subscription": "sub_", "subscription_item": "si_",
    "schedule": "sub_sched_", "invoice": "in_", "event": "evt_",
}
# `count_created` also understands Stripe's object names and the plural of each kind.
KIND_ALIASES = {"subscription_schedule": "schedule", "checkout.session": "checkout_session"}
# Shared by schedules and subscriptions: canceling a subscription cancels the open schedule driving it.
OPEN_SCHEDULE_STATUSES = ("not_started", "active")


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
class RequestContext:
    """The API request being answered, which the events it causes name."""

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


class SandboxCore:
    """Everything one sandbox account holds; the arguments are those of `StripeSandbox`."""

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
        self._request = RequestContext()

    def now(self) -> int:
        if self._pinned is not None:
            return self._pinned
        return int(time.time() + self._offset)

    def process_due(self) -> None:
        """Runs what is due by now (the server calls this before every request)."""
        # Operations on several resources catch up first, so it is declared here; `ClockMixin` implements it.
        raise NotImplementedError

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
