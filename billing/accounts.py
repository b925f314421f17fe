"""A user's account row: opened with its welcome credits, and its subscription tier."""

from typing import Optional

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import credits
from conversation.sessions import ensure_user
from models.db import User


async def open_account(db: AsyncSession, user_id: str, welcome_credits: int, email: Optional[str] = None) -> None:
    """The user's row and first credits, on first contact (repeats change nothing but a new email)."""
    await ensure_user(db, user_id)
    if email:
        # Only when it changed: most requests write nothing more.
        await db.execute(update(User).where(User.id == user_id, User.email.is_distinct_from(email)).values(email=email))
    await credits.grant_welcome_credits(db, user_id, welcome_credits)


async def user_email(db: AsyncSession, user_id: str) -> Optional[str]:
    return (await db.execute(select(User.email).where(User.id == user_id))).scalar_one_or_none()


async def user_tier(db: AsyncSession, user_id: str) -> str:
    return (await db.execute(select(User.tier).where(User.id == user_id))).scalar_one_or_none() or "FREE"


async def set_tier(db: AsyncSession, user_id: str, tier: str) -> None:
    await ensure_user(db, user_id)
    await db.execute(update(User).where(User.id == user_id).values(tier=tier))
    await db.commit()
