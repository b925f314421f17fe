"""Ids, constants and the small value rules every resource shares (booleans, integers,
timestamps and metadata as Stripe reads them from form-encoded parameters)."""

import secrets
import string
from typing import Any

from local.stripe.errors import invalid

# The API version the pinned `stripe` library (16.1.0) sends in its `Stripe-Version` header.
# Events are stamped with it; a request's own header wins for the response header.
API_VERSION = "2026-10-28.endive"
# Stripe removed `phases[].iterations` from subscription schedules in this version (use
# `duration`); older versions still accept it.
ITERATIONS_REMOVED_IN = "2025-09-30"

# Every price in the sandbox is monthly, and a month is 30 days on the sandbox clock.
DAY = 86_400
PERIOD_SECONDS = 30 * DAY
INTERVAL_SECONDS = {"day": DAY, "week": 7 * DAY, "month": PERIOD_SECONDS, "year": 365 * DAY}

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """`cus_` + 24 random letters and digits, as Stripe's ids look."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def as_bool(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise invalid(f"Invalid boolean: {value}", param=param)


def as_int(value: Any, param: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise invalid(f"Invalid integer: {value}", param=param)


def as_timestamp(value: Any, param: str, now: int) -> int:
    """A unix timestamp or the word `now`."""
    return now if value == "now" else as_int(value, param)


def as_dict(value: Any, param: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"Invalid object: {param} must be an object", param=param)
    return value


def as_list(value: Any, param: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid(f"Invalid array: {param} must be an array", param=param)
    return value


def merged_metadata(current: dict[str, str], update: Any, param: str = "metadata") -> dict[str, str]:
    """Stripe's metadata update: keys are merged, an empty value removes a key, and an empty
    `metadata` removes them all."""
    if update is None:
        return dict(current)
    if update == "":
        return {}
    result = dict(current)
    for key, value in as_dict(update, param).items():
        if value in ("", None):
            result.pop(key, None)
        else:
            result[key] = str(value)
    return result


def price_object(price_id: str, unit_amount: int, created: int) -> dict[str, Any]:
    return {
        "id": price_id, "object": "price", "active": True, "billing_scheme": "per_unit", "created": created,
        "currency": "usd", "livemode": False, "lookup_key": None, "metadata": {}, "nickname": None,
        "product": "prod_" + price_id.removeprefix("price_"),
        "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed", "meter": None},
        "tax_behavior": "unspecified", "type": "recurring", "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def list_object(data: list[dict[str, Any]], url: str, has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def previous_attributes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The top-level fields that changed, with their old values (an event's
    `data.previous_attributes`)."""
    return {key: before.get(key) for key, value in after.items() if before.get(key) != value}
