"""A user's subscription tier, as stored in Postgres."""

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversation.sessions import ensure_user
from models.db import User


async def user_tier(db: AsyncSession, user_id: str) -> str:
    return (await db.execute(select(User.tier).where(User.id == user_id))).scalar_one_or_none() or "FREE"


async def set_tier(db: AsyncSession, user_id: str, tier: str) -> None:
    await ensure_user(db, user_id)
    await db.execute(update(User).where(User.id == user_id).values(tier=tier))
    await db.commit()
