"""/api/credits/stripe_webhook: Stripe's events, verified, each acted on once by the user's
SubscriptionWorkflow."""

import stripe
from fastapi import APIRouter, Request

from api.deps import DbDep, SettingsDep, TemporalDep
from api.errors import ApiError
from billing.stripe_webhooks import accept_event
from models.api import ErrorResponse, WebhookReceipt
from models.subscription import StripeEventNotice
from workflows.subscription_client import deliver_stripe_event

router = APIRouter(prefix="/api/credits", tags=["subscription"])

# The route reads the raw body (the signature covers its exact bytes), so FastAPI cannot see
# what it takes: the spec is told here.
STRIPE_EVENT_DOC = {
    "parameters": [{"name": "Stripe-Signature", "in": "header", "required": True, "schema": {"type": "string"},
                    "description": "Stripe's signature of the exact body with the webhook secret."}],
    "requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object", "description": "A Stripe event."}}}},
}


@router.post("/stripe_webhook", response_model=WebhookReceipt,  # body limit: api/body_limit.py
             responses={400: {"model": ErrorResponse, "description": "Missing or wrong `Stripe-Signature`."},
                        413: {"model": ErrorResponse}}, openapi_extra=STRIPE_EVENT_DOC)
async def stripe_webhook(request: Request, db: DbDep, temporal: TemporalDep, settings: SettingsDep) -> WebhookReceipt:
    """Stripe's events, verified by their signature; each event id is acted on once."""
    payload = await request.body()
    if not settings.stripe_webhook_secret:
        raise ApiError(400, "webhook_not_configured", "Stripe webhooks are not configured on this server.")
    try:
        event = stripe.Webhook.construct_event(payload, request.headers.get("stripe-signature", ""),
                                               settings.stripe_webhook_secret)
    except (ValueError, stripe.SignatureVerificationError):
        raise ApiError(400, "invalid_signature", "The Stripe signature is missing or does not match.") from None

    async def deliver(user_id: str, notice: StripeEventNotice) -> None:
        await deliver_stripe_event(temporal, settings, user_id, notice)

    return WebhookReceipt(outcome=await accept_event(db, deliver, event.to_dict()))
