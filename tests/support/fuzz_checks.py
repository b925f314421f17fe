"""Checks of the API fuzz (tests/integration/test_api_fuzz.py) beyond schemathesis' own: loaded by
`schemathesis run` as its hooks module (`hooks` in tests/integration/schemathesis.toml).

A schema-valid request may still be refused for a reason no stateless schema can state: it
depends on what happened before (the key was used, nothing is spent yet, the user is on FREE).
The config lets those operations answer those statuses to schema-valid requests; the check here
makes sure such a refusal is the documented one, and nothing else slips through with it.
"""

import schemathesis

WEBHOOK = "POST /api/credits/stripe_webhook"

# operation -> status -> the error codes (or, for a code shared with schema refusals, the exact
# message) that a schema-valid request may get.
STATE_REFUSALS: dict[str, dict[int, set[str]]] = {
    # A key already used with another message or session (conversation/idempotent_sends.py).
    # ... and a generated file id names no file of the user's (like a generated session id: a 404's kin);
    # a caller already at the recursion depth it allows (two fields no schema can relate).
    "POST /api/chat/sessions/{session_id}/stream": {422: {"idempotency_key_reused", "unknown_file"}},
    "POST /api/chat/sessions/{session_id}/turns": {422: {"idempotency_key_reused", "recursion_too_deep"}},
    "POST /api/service/users/{user_id}/turns": {422: {"idempotency_key_reused", "recursion_too_deep"}},
    "POST /api/platform-bot/chat/turns": {422: {"idempotency_key_reused"}},
    # A FREE user's move to a paid tier is a Stripe Checkout, which needs a success_url
    # (workflows/subscription.py, `MissingRedirect`).
    "POST /api/credits/subscription": {422: {"A success_url is needed to start a checkout."}},
    # Nothing to reset yet, no daily limit, or the credits are short (api/routers/usage.py).
    "POST /api/chat/usage/reset": {400: {"not_over_limit", "no_daily_limit", "reset_not_available"},
                                   402: {"insufficient_credits"}},
    # No generated request carries Stripe's signature.
    WEBHOOK: {400: {"invalid_signature"}},
    # A link token the fuzz saw in an answer: already used, or one of the other flow (server / user).
    "GET /api/platform-linking/tokens/{token}/info": {410: {"link_token_expired"}},
    "POST /api/platform-linking/tokens/{token}/confirm": {400: {"link_flow_mismatch"}, 410: {"link_token_expired"}},
    "POST /api/platform-linking/user-tokens/{token}/confirm": {400: {"link_flow_mismatch"},
                                                               410: {"link_token_expired"}},
}


def _label(case) -> str:
    return f"{case.method.upper()} {case.operation.path}"


@schemathesis.check
def valid_requests_are_refused_only_for_documented_states(ctx, response, case) -> None:
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    allowed = STATE_REFUSALS.get(_label(case), {}).get(response.status_code)
    if allowed is None:
        return  # not a relaxed status here: schemathesis' positive_data_acceptance judges it
    error = response.json()["error"]
    if error["code"] not in allowed and error["message"] not in allowed:
        raise AssertionError(f"a schema-valid request got {response.status_code} {error['code']}: {error['message']}")


@schemathesis.check
def unsigned_stripe_events_are_refused(ctx, response, case) -> None:
    """Every event the fuzz sends is unsigned, so every one must be refused: a 400, or a 413 past
    the webhook's body limit. A 200 would be a forged event acted on."""
    if _label(case) == WEBHOOK and response.status_code not in (400, 413):
        raise AssertionError(f"an unsigned Stripe event got {response.status_code}, not 400")
