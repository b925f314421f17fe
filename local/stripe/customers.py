"""Customers: created through the API or by a checkout session given only an email."""

import copy
from typing import Any

from local.stripe.core import SandboxCore
from local.stripe.objects import merged_metadata


class CustomersMixin(SandboxCore):
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
