"""Errors in Stripe's shape, so the `stripe` library raises the same exception classes as with
Stripe itself: 400 and 404 become `InvalidRequestError`, 401 `AuthenticationError`, an
`idempotency_error` `IdempotencyError`, 5xx `APIError`."""

from typing import Any


class StripeError(Exception):
    def __init__(self, status: int, type_: str, message: str, *, code: str | None = None,
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(400, "invalid_request_error", message, code=code, param=param)


def missing(kind: str, object_id: str, param: str = "id", status: int = 404) -> StripeError:
    """An unknown id: 404 when it is in the path, 400 when a parameter refers to it (as Stripe does)."""
    return StripeError(status, "invalid_request_error", f"No such {kind}: '{object_id}'", code="resource_missing",
                       param=param)


def missing_param(param: str) -> StripeError:
    return invalid(f"Missing required param: {param}.", param=param, code="parameter_missing")


def api_error(status: int) -> StripeError:
    return StripeError(status, "api_error", "An error occurred with our connection to Stripe (injected by the "
                                            "offline sandbox).")
