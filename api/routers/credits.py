"""/api/credits: the subscription tier (changed only through the user's SubscriptionWorkflow)
and Stripe's webhook."""

import logging
from typing import Optional

import stripe
from fastapi import APIRouter, Request

from api.auth import CurrentUser
from api.deps import DbDep, SettingsDep, TemporalDep
from api.errors import ApiError
from billing.accounts import user_tier
from billing.redirects import on_origin
from billing.stripe_webhooks import accept_event
from billing.tiers import tier_costs
from models.api import ErrorResponse, SubscriptionStatus, SubscriptionTierRequest, WebhookReceipt
from models.subscription import SubscriptionView
from settings import Settings
from workflows.subscription_client import SubscriptionChangeFailed, change_tier, subscription_view

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/credits", tags=["credits"])

CHANGE_FAILURES = {
    "ManagedByAdmin": (403, "managed_by_admin"),
    "MissingRedirect": (422, "invalid_request"),
    "StripeFailed": (502, "stripe_unavailable"),
}


def status_of(settings: Settings, tier: str, view: Optional[SubscriptionView]) -> SubscriptionStatus:
    costs = tier_costs(settings)
    return SubscriptionStatus(
        tier=tier, monthly_cost=costs.get(tier, 0), tier_costs=costs,
        pending_tier=view.pending_tier if view else None,
        pending_tier_effective_at=view.pending_tier_effective_at if view and view.pending_tier else None,
        url=view.url if view else "")


@router.get("/subscription", response_model=SubscriptionStatus, responses={401: {"model": ErrorResponse}})
async def get_subscription(user: CurrentUser, db: DbDep, temporal: TemporalDep,
                           settings: SettingsDep) -> SubscriptionStatus:
    """The tier from the database and the pending change from the workflow's state (no Stripe call)."""
    return status_of(settings, await user_tier(db, user.id), await subscription_view(temporal, user.id))


@router.post("/subscription", response_model=SubscriptionStatus, responses={
    401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, 422: {"model": ErrorResponse},
    502: {"model": ErrorResponse}, 503: {"model": ErrorResponse}})
async def update_subscription(body: SubscriptionTierRequest, user: CurrentUser, temporal: TemporalDep,
                              settings: SettingsDep) -> SubscriptionStatus:
    """Upgrade (at once, prorated), downgrade (at the period end), cancel to FREE (at the period
    end), start a Checkout (FREE to paid: `url`), or, with the current tier, cancel what is pending."""
    if not settings.stripe_api_key:
        raise ApiError(503, "subscriptions_unavailable", "Subscriptions are not available on this server.")
    for field in ("success_url", "cancel_url"):
        value = getattr(body, field)
        if value and not on_origin(value, settings.frontend_origin):
            raise ApiError(422, "invalid_request", f"{field} must be on {settings.frontend_origin}.",
                           details=[{"loc": ["body", field], "msg": "not on the front-end origin"}])
    try:
        view = await change_tier(temporal, settings, user.id, body)
    except SubscriptionChangeFailed as failure:
        status, code = CHANGE_FAILURES.get(failure.kind, (502, "stripe_unavailable"))
        raise ApiError(status, code, failure.message) from None
    return status_of(settings, view.tier, view)


@router.post("/stripe_webhook", response_model=WebhookReceipt, responses={400: {"model": ErrorResponse}})
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
    return WebhookReceipt(outcome=await accept_event(db, temporal, settings, event.to_dict()))
