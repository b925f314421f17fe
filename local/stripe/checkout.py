"""Checkout sessions in subscription mode: created with line items of the preconfigured prices,
and completed (the customer pays on the hosted page) into a customer and an active subscription.
"""

import copy
from typing import Any

from local.stripe.customers import CustomersMixin
from local.stripe.errors import invalid, missing, missing_param
from local.stripe.objects import DAY, as_dict, as_list, merged_metadata
from local.stripe.phases import phase_items
from local.stripe.subscriptions import SubscriptionsMixin


class CheckoutMixin(CustomersMixin, SubscriptionsMixin):
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
            if url is not None and not str(url).lower().startswith(("http://", "https://")):  # schemes: any case
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
