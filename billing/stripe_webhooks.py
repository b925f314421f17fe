"""Verified Stripe webhooks, handed to the owning user's subscription workflow.

An event id is recorded in the same transaction that signals the workflow, so an event that
Stripe delivers twice (or a replayed request) is acted on once, and an event whose signal
failed is not marked done: Stripe retries it.
"""

import logging
from typing import Any, Awaitable, Callable, Literal, Optional

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.db import StripeEvent, User, utcnow
from models.subscription import StripeEventNotice

log = logging.getLogger(__name__)

HANDLED_EVENTS = frozenset({
    "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
    "subscription_schedule.released", "subscription_schedule.completed",
    "checkout.session.completed", "invoice.payment_failed",
})
# `subscription_schedule.updated` is deliberately absent: our own schedule calls cause it.

Outcome = Literal["delivered", "duplicate", "ignored", "unknown_customer"]
# Hands a user's event to whoever applies it (the user's subscription workflow).
Deliver = Callable[[str, StripeEventNotice], Awaitable[None]]


def _id_of(value: Any) -> Optional[str]:
    if isinstance(value, str):
        return value
    return value.get("id") if value else None


async def owner_of(db: AsyncSession, obj: dict[str, Any]) -> Optional[str]:
    """The user an event's object belongs to: by Stripe customer, else by the reference we set."""
    customer_id = _id_of(obj.get("customer"))
    if customer_id:
        user_id = (await db.execute(select(User.id).where(User.stripe_customer_id == customer_id))).scalar()
        if user_id:
            return user_id
    reference = obj.get("client_reference_id") or (obj.get("metadata") or {}).get("user_id")
    if reference:
        return (await db.execute(select(User.id).where(User.id == reference))).scalar()
    return None


async def accept_event(db: AsyncSession, deliver: Deliver, event: dict[str, Any]) -> Outcome:
    if event["type"] not in HANDLED_EVENTS:
        return "ignored"
    user_id = await owner_of(db, event["data"]["object"])
    if user_id is None:
        log.warning("Stripe event %s (%s) belongs to no known customer", event["id"], event["type"])
        return "unknown_customer"
    recorded = (await db.execute(insert(StripeEvent).values(
        id=event["id"], type=event["type"], user_id=user_id, received_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["id"]).returning(StripeEvent.id))).scalar()
    if recorded is None:
        await db.rollback()
        return "duplicate"
    await deliver(user_id, StripeEventNotice(
        event_id=event["id"], type=event["type"], created=int(event.get("created") or 0)))
    await db.commit()
    return "delivered"
