"""Stripe's idempotency layer: the first response to a key is stored and replayed for every
later request with that key, without running it again."""

from dataclasses import dataclass
from typing import Any

from local.stripe.errors import StripeError


@dataclass(frozen=True)
class StoredResponse:
    method: str
    path: str
    params: dict[str, Any]
    status: int
    body: dict[str, Any]


class IdempotencyStore:
    def __init__(self) -> None:
        self._responses: dict[str, StoredResponse] = {}

    def __len__(self) -> int:
        return len(self._responses)

    def lookup(self, key: str, method: str, path: str, params: dict[str, Any]) -> StoredResponse | None:
        """The stored response for `key`, or None for a new key. Reusing a key for a different
        request is an `idempotency_error`, as on Stripe."""
        stored = self._responses.get(key)
        if stored is None:
            return None
        if (stored.method, stored.path) != (method, path):
            raise StripeError(400, "idempotency_error",
                              f"Keys for idempotent requests can only be used for the same endpoint they were first "
                              f"used for ('{stored.method} {stored.path}'). Try using a key other than '{key}' if you "
                              f"meant to execute a different request.")
        if stored.params != params:
            raise StripeError(400, "idempotency_error",
                              f"Keys for idempotent requests can only be used with the same parameters they were "
                              f"first used with. Try using a key other than '{key}' if you meant to execute a "
                              f"different request.")
        return stored

    def store(self, key: str, response: StoredResponse) -> None:
        self._responses[key] = response
