"""Subscription items: the `items` parameter of a subscription update, and applying item
changes with their proration (recorded in `price_changes`, billed at once with `always_invoice`)."""

import copy
from typing import Any

from local.stripe.core import PriceChange
from local.stripe.errors import missing, missing_param
from local.stripe.invoices import InvoicesMixin
from local.stripe.objects import as_bool, as_dict, as_int, as_list


class SubscriptionItemsMixin(InvoicesMixin):
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
