"""A built-in, offline, Stripe-compatible sandbox: the real `stripe` library talks to it like to
Stripe itself. Used by the test suite in-process and by `make dev` when no Stripe key is set.

`StripeSandbox` (in `state`) holds customers, checkout sessions, subscriptions, schedules and
events, with a clock that tests can move forward; `server.create_app` serves it over HTTP.
"""

from local.stripe.errors import StripeError
from local.stripe.state import StripeSandbox

__all__ = ["StripeError", "StripeSandbox"]
