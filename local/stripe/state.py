"""The sandbox: one Stripe account's customers, checkout sessions, subscriptions, schedules,
invoices and the events they cause, on a clock that tests can move forward.

Every public method is one Stripe operation; the HTTP server maps requests to them, and tests
may call them directly. Each resource is modelled in its own module, as a mixin over the shared
stores of `core`: `customers`, `checkout`, `subscriptions` (with `subscription_items` and
`invoices`), `schedules`, `events`, and `clock` for what falls due as time passes. This class
adds what belongs to the account as a whole: its prices and the faults tests inject.
"""

import copy
from typing import Any

from local.stripe.checkout import CheckoutMixin
from local.stripe.clock import ClockMixin
from local.stripe.core import PriceChange, RequestRecord
from local.stripe.faults import Fault


class StripeSandbox(CheckoutMixin, ClockMixin):
    """One in-memory Stripe account in test mode.

    `prices` maps each preconfigured price id to its monthly amount in cents; checkout pages
    live under `public_base_url`; events go to `webhook_url` (None: recorded, never sent)
    signed with `webhook_secret`. Requests must carry `api_key`.
    """

    def retrieve_price(self, price_id: str) -> dict[str, Any]:
        return copy.deepcopy(self._get(self.prices, "price", price_id))

    def inject_fault(self, method: str, path_prefix: str, status: int = 500, count: int = 1,
                     after: bool = False) -> Fault:
        """See `Fault`: the next `count` matching API requests fail with `status`."""
        return self.faults.add(Fault(method, path_prefix, status, count, after))

    def clear_faults(self) -> None:
        self.faults.clear()


__all__ = ["PriceChange", "RequestRecord", "StripeSandbox"]
