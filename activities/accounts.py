"""The user's account row as the subscription workflow reads and writes it: tier and Stripe
customer. Writes are plain overwrites of one row, so a retry is harmless."""

import logging

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from conversation.sessions import ensure_user
from models.db import User
from models.subscription import Account, ApplyTierRequest, SaveCustomerRequest, Tier

log = logging.getLogger(__name__)


class AccountActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]):
        self.sessions = sessions

    @activity.defn
    async def load_account(self, user_id: str) -> Account:
        async with self.sessions() as db:
            row = (await db.execute(select(User.tier, User.stripe_customer_id).where(User.id == user_id))).first()
        if row is None:
            return Account(tier="FREE")
        return Account(tier=row.tier, stripe_customer_id=row.stripe_customer_id)

    @activity.defn
    async def save_stripe_customer(self, request: SaveCustomerRequest) -> None:
        async with self.sessions() as db:
            await ensure_user(db, request.user_id)
            await db.execute(update(User).where(User.id == request.user_id)
                             .values(stripe_customer_id=request.stripe_customer_id))
            await db.commit()

    @activity.defn
    async def apply_stripe_tier(self, request: ApplyTierRequest) -> Tier:
        """Sets the tier Stripe says the user pays for. An ENTERPRISE tier is an administrator's
        decision and is left alone."""
        async with self.sessions() as db:
            await ensure_user(db, request.user_id)
            current = (await db.execute(select(User.tier).where(User.id == request.user_id).with_for_update())).scalar_one()
            if current == "ENTERPRISE" or current == request.tier:
                await db.rollback()
                return current
            await db.execute(update(User).where(User.id == request.user_id).values(tier=request.tier))
            await db.commit()
        log.info("subscription tier changed from %s to %s", current, request.tier)
        return request.tier
