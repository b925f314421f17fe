"""The audit log of operator actions: who did what to which turn, when, and how it ended.

Every admin action writes one row, whatever its outcome (a refusal and an error included), so
the log answers "who stopped this turn?" even for attempts that changed nothing.
"""

from typing import Any, Optional, Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.db import AdminAuditEntry, utcnow
from models.text import storable, storable_json


async def record_action(db: AsyncSession, admin_id: str, action: str, outcome: str, target: Optional[str] = None,
                        reason: Optional[str] = None, details: Optional[dict[str, Any]] = None) -> AdminAuditEntry:
    entry = AdminAuditEntry(admin_id=admin_id, action=action, outcome=outcome, target=target,
                            reason=storable(reason) if reason else None, details=storable_json(details or {}),
                            created_at=utcnow())
    db.add(entry)
    await db.commit()
    return entry


async def audit_page(db: AsyncSession, limit: int, offset: int, action: Optional[str] = None,
                     target: Optional[str] = None) -> tuple[Sequence[AdminAuditEntry], int]:
    """Newest first, optionally of one action, or about one session (its own actions, and the bulk
    ones that named it)."""
    where = []
    if action:
        where.append(AdminAuditEntry.action == action)
    if target:
        where.append(or_(AdminAuditEntry.target == target, AdminAuditEntry.details["outcomes"].has_key(target)))
    total = (await db.execute(select(func.count()).select_from(AdminAuditEntry).where(*where))).scalar_one()
    rows = (await db.execute(select(AdminAuditEntry).where(*where).order_by(
        AdminAuditEntry.created_at.desc(), AdminAuditEntry.id.desc()).limit(limit).offset(offset))).scalars().all()
    return rows, total
