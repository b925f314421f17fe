"""The credit ledger in Postgres. Every entry has a unique idempotency key, so a retried grant
or charge is a no-op, enforced by the database rather than by hoping retries do not happen.
A debit goes through `debit_if_covered` alone, so no balance is ever overdrawn; grants and refunds only
add credits and need no lock."""

from sqlalchemy import func, select, text
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


# First half of the two-key advisory lock of a user's debits: keeps it apart from any other
# advisory lock taken on the same database.
_DEBIT_LOCK_NAMESPACE = 7301


async def debit_if_covered(db: AsyncSession, user_id: str, amount: int, key: str, reason: str) -> bool:
    """Debits `amount` under `key` only if the balance covers it; True when the key is debited (now, or by an
    earlier attempt with the same key). Concurrent debits of one user are serialised by a transaction-scoped
    advisory lock taken before the balance is read, so two of them can never both spend the same credits:
    commit (or roll back) soon, the lock is held until the transaction ends."""
    await db.execute(text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:user_id))"),
                     {"namespace": _DEBIT_LOCK_NAMESPACE, "user_id": user_id})
    if await already_charged(db, key):
        return True
    if await balance(db, user_id) < amount:
        return False
    await add_entry(db, user_id, -amount, key, reason)
    return True


def refund_key(debit_key: str) -> str:
    return f"{debit_key}:refund"


async def refund(db: AsyncSession, user_id: str, debit_key: str, reason: str) -> bool:
    """Gives back the debit written under `debit_key`, once (the refund has its own key). No debit under
    that key, nothing to give back. True when the refund was written now."""
    debit = (await db.execute(select(CreditEntry.amount).where(
        CreditEntry.idempotency_key == debit_key, CreditEntry.user_id == user_id))).scalar_one_or_none()
    if debit is None or debit >= 0:
        return False
    return await add_entry(db, user_id, -debit, refund_key(debit_key), reason)


async def already_charged(db: AsyncSession, key: str) -> bool:
    return (await db.execute(select(CreditEntry.id).where(CreditEntry.idempotency_key == key))).first() is not None


async def grant_welcome_credits(db: AsyncSession, user_id: str, amount: int) -> None:
    """Every user's first credits, granted once (the key makes repeats no-ops)."""
    if amount > 0:
        await add_entry(db, user_id, amount, f"grant:welcome:{user_id}", "welcome credits")
