"""What the tiers cost: their Stripe prices and their monthly amounts, from the settings."""

from typing import Optional

from models.subscription import PaidTier, Tier
from settings import Settings


def price_ids(settings: Settings) -> dict[PaidTier, str]:
    return {"PRO": settings.stripe_price_pro, "BUSINESS": settings.stripe_price_business}


def tier_for_price(settings: Settings, price_id: str) -> Optional[Tier]:
    for tier, price in price_ids(settings).items():
        if price == price_id:
            return tier
    return None


def tier_costs(settings: Settings) -> dict[str, int]:
    """Monthly cost of each self-service tier, in cents."""
    return {"FREE": 0, "PRO": settings.tier_cost_cents_pro, "BUSINESS": settings.tier_cost_cents_business}
