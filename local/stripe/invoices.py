"""Invoices: what a subscription is billed when it starts, renews, changes price with
`always_invoice`, or fails to pay (an open invoice then). They are stored, never listed."""

from typing import Any

from local.stripe.core import SandboxCore


class InvoicesMixin(SandboxCore):
    @staticmethod
    def _amount(sub: dict[str, Any]) -> int:
        return sum(item["price"]["unit_amount"] * item["quantity"] for item in sub["items"]["data"])

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
