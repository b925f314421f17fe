"""/api/credits/subscription: the user's tier, changed only through their SubscriptionWorkflow."""

from datetime import datetime
from typing import Optional

from fastapi import APIRouter

from api.auth import CurrentUser
from api.deps import DbDep, NowDep, SettingsDep, TemporalDep
from api.errors import ApiError
from billing.accounts import user_tier
from billing.prices import tier_costs
from billing.redirects import on_origin
from billing.tiers import proration_credit_cents
from models.api import ErrorResponse, SubscriptionStatus, SubscriptionTierRequest
from models.subscription import SubscriptionView
from settings import Settings
from workflows.subscription_client import SubscriptionChangeFailed, change_tier, subscription_view

router = APIRouter(prefix="/api/credits", tags=["subscription"])

CHANGE_FAILURES = {
    "ManagedByAdmin": (403, "managed_by_admin"),
    "MissingRedirect": (422, "invalid_request"),
    "StripeFailed": (502, "stripe_unavailable"),
}


def status_of(settings: Settings, tier: str, view: Optional[SubscriptionView], now: datetime) -> SubscriptionStatus:
    costs = tier_costs(settings)
    monthly_cost = costs.get(tier, 0)
    proration = proration_credit_cents(monthly_cost, view.current_period_start, view.current_period_end,
                                       now) if view else 0
    return SubscriptionStatus(
        tier=tier, monthly_cost=monthly_cost, tier_costs=costs, proration_credit_cents=proration,
        pending_tier=view.pending_tier if view else None,
        pending_tier_effective_at=view.pending_tier_effective_at if view and view.pending_tier else None,
        url=view.url if view else "")


@router.get("/subscription", response_model=SubscriptionStatus, responses={401: {"model": ErrorResponse}})
async def get_subscription(user: CurrentUser, db: DbDep, temporal: TemporalDep, settings: SettingsDep,
                           now: NowDep) -> SubscriptionStatus:
    """The tier from the database; the pending change and the billing period (for the proration
    credit) from the workflow's state (no Stripe call)."""
    return status_of(settings, await user_tier(db, user.id), await subscription_view(temporal, user.id), now)


@router.post("/subscription", response_model=SubscriptionStatus, responses={
    401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, 422: {"model": ErrorResponse},
    502: {"model": ErrorResponse}, 503: {"model": ErrorResponse}})
async def update_subscription(body: SubscriptionTierRequest, user: CurrentUser, temporal: TemporalDep,
                              settings: SettingsDep, now: NowDep) -> SubscriptionStatus:
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
    return status_of(settings, view.tier, view, now)
