"""The credit ledger in Postgres. Every entry has a unique idempotency key, so a retried grant
or charge is a no-op, enforced by the database rather than by hoping retries do not happen."""

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.db import CreditEntry, utcnow


async def balance(db: AsyncSession, user_id: str) -> int:
    return (await db.execute(
        select(func.coalesce(func.sum(CreditEntry.amount), 0)).where(CreditEntry.user_id == user_id)
    )).scalar_one()


async def add_entry(db: AsyncSession, user_id: str, amount: int, key: str, reason: str) -> bool:
    """Writes the entry unless its key exists; True when it was written."""
    written = await db.execute(insert(CreditEntry).values(
        user_id=user_id, amount=amount, reason=reason, idempotency_key=key, created_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(CreditEntry.id))
    return written.scalar_one_or_none() is not None


async def already_charged(db: AsyncSession, key: str) -> bool:
    return (await db.execute(select(CreditEntry.id).where(CreditEntry.idempotency_key == key))).first() is not None


async def grant_welcome_credits(db: AsyncSession, user_id: str, amount: int) -> None:
    """Every user's first credits, granted once (the key makes repeats no-ops)."""
    if amount > 0:
        await add_entry(db, user_id, amount, f"grant:welcome:{user_id}", "welcome credits")
