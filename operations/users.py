"""Looking a user up as an operator: whether the account exists at all (a lookup of an id that
never signed in is a 404, not an empty account)."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.db import User


async def account_exists(db: AsyncSession, user_id: str) -> bool:
    return (await db.execute(select(User.id).where(User.id == user_id))).scalar_one_or_none() is not None
