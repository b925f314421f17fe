"""Links and link tokens: issue, read, confirm (race-free), list, delete, resolve.

Server links and DM (user) links work the same way on different tables; `LinkKind` says which
table and columns. There is no fallback between them: a server's link never answers for a
person's DMs, nor the other way round.
"""

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional, Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from conversation.sessions import ensure_user
from models.db import utcnow
from models.platform_links import PlatformLinkToken, PlatformServerLink, PlatformUserLink
from models.platforms import LINK_TOKEN_TTL_SECONDS, LinkType
from platform_linking.errors import LinkAlreadyExists, LinkFlowMismatch, LinkTokenExpired, NotAuthorized, NotFound

log = logging.getLogger(__name__)

TOKEN_BYTES = 32  # secrets.token_urlsafe(32): 43 characters of [A-Za-z0-9_-], within the routes' 64
ISSUE_ATTEMPTS = 5  # a token issued for the same target at the same moment makes the insert retry once or so
Link = PlatformServerLink | PlatformUserLink


@dataclass(frozen=True)
class LinkKind:
    link_type: LinkType
    model: type[Link]
    target_column: str  # the platform's id the link is unique on, with the platform
    owner_column: str
    name_column: str
    already_linked: str  # the refusal, with {whose}
    missing: str

    def column(self, name: str) -> Any:
        return getattr(self.model, name)

    def owner_of(self, link: Link) -> str:
        return getattr(link, self.owner_column)


SERVER = LinkKind(LinkType.SERVER, PlatformServerLink, "platform_server_id", "owner_user_id", "server_name",
                  "This server is already linked to {whose}.", "No such server link.")
USER = LinkKind(LinkType.USER, PlatformUserLink, "platform_user_id", "user_id", "platform_username",
                "These direct messages are already linked to {whose}.", "No such direct-message link.")
KINDS = {LinkType.SERVER: SERVER, LinkType.USER: USER}


def owner_tag(user_id: str) -> str:
    """What logs say of an owner: the last 8 characters of the id, enough to find a case, not a person."""
    return f"…{user_id[-8:]}"


def _parse_id(link_id: str) -> Optional[str]:
    try:
        return str(uuid.UUID(link_id))
    except ValueError:
        return None


def token_status(token: PlatformLinkToken, now: datetime) -> str:
    """pending, linked, expired or superseded: whichever ended the token first."""
    if token.used_at is not None:
        return "linked"
    if token.superseded_at is not None and token.superseded_at < token.expires_at:
        return "superseded"
    if token.expires_at <= now:
        return "expired"
    return "pending"


async def find_link(db: AsyncSession, kind: LinkKind, platform: str, target_id: str) -> Optional[Link]:
    return (await db.execute(select(kind.model).where(
        kind.column("platform") == platform, kind.column(kind.target_column) == target_id))).scalar_one_or_none()


async def find_server_link(db: AsyncSession, platform: str, platform_server_id: str) -> Optional[PlatformServerLink]:
    return await find_link(db, SERVER, platform, platform_server_id)


async def find_user_link(db: AsyncSession, platform: str, platform_user_id: str) -> Optional[PlatformUserLink]:
    return await find_link(db, USER, platform, platform_user_id)


async def issue_link_token(db: AsyncSession, link_type: LinkType, platform: str, target_id: str,
                           display_name: Optional[str], now: Optional[datetime] = None) -> PlatformLinkToken:
    """A new one-time token for the target; its open tokens are superseded in the same transaction.
    A target already linked is refused (LinkAlreadyExists)."""
    kind = KINDS[link_type]
    for attempt in range(ISSUE_ATTEMPTS):
        moment = now or utcnow()
        if await find_link(db, kind, platform, target_id) is not None:
            await db.rollback()
            raise LinkAlreadyExists(kind.already_linked.format(whose="an account"))
        await db.execute(update(PlatformLinkToken).where(
            PlatformLinkToken.link_type == link_type.value, PlatformLinkToken.platform == platform,
            PlatformLinkToken.target_id == target_id, PlatformLinkToken.used_at.is_(None),
            PlatformLinkToken.superseded_at.is_(None)).values(superseded_at=moment)
            .execution_options(synchronize_session=False))
        token = PlatformLinkToken(token=secrets.token_urlsafe(TOKEN_BYTES), link_type=link_type.value,
                                  platform=platform, target_id=target_id, display_name=display_name,
                                  created_at=moment, expires_at=moment + timedelta(seconds=LINK_TOKEN_TTL_SECONDS))
        db.add(token)
        try:
            await db.commit()
            return token
        except IntegrityError:
            # Another token for this target was issued at the same moment (the one-open-token
            # index): the next attempt supersedes it.
            await db.rollback()
            if attempt == ISSUE_ATTEMPTS - 1:
                raise
    raise RuntimeError("unreachable")


async def find_token(db: AsyncSession, token: str) -> Optional[PlatformLinkToken]:
    return (await db.execute(select(PlatformLinkToken).where(PlatformLinkToken.token == token))).scalar_one_or_none()


def _ended(token: PlatformLinkToken, status: str) -> LinkTokenExpired:
    messages = {"linked": "This link token has already been used.",
                "superseded": "A newer link token was issued; use the latest link the bot gave you.",
                "expired": "This link token has expired; ask the bot for a new link."}
    reason = {"linked": "used"}.get(status, status)
    return LinkTokenExpired(messages.get(status, messages["expired"]), reason=reason)


async def open_token(db: AsyncSession, token: str, now: Optional[datetime] = None) -> PlatformLinkToken:
    """The token if it can still be confirmed (the link page's info): NotFound or LinkTokenExpired otherwise."""
    row = await find_token(db, token)
    if row is None:
        raise NotFound("No such link token.")
    status = token_status(row, now or utcnow())
    if status != "pending":
        raise _ended(row, status)
    return row


async def _refusal(db: AsyncSession, kind: LinkKind, token: str, now: datetime) -> Exception:
    """Why a confirm claimed nothing: unknown, the other flow, or no longer open."""
    row = await find_token(db, token)
    if row is None:
        return NotFound("No such link token.")
    if row.link_type != kind.link_type.value:
        other = "/user-tokens/{token}/confirm" if row.link_type == LinkType.USER.value else "/tokens/{token}/confirm"
        return LinkFlowMismatch(f"This is a {row.link_type} link token; confirm it at {other}.")
    return _ended(row, token_status(row, now))


async def _confirm(db: AsyncSession, kind: LinkKind, token: str, user_id: str) -> Link:
    """One conditional UPDATE claims the token (open, of this flow, not expired): of any number of
    concurrent confirms exactly one claims it, and the others see it used (LinkTokenExpired). The
    link is inserted in the same transaction; a target linked meanwhile rolls the claim back."""
    now = utcnow()
    await ensure_user(db, user_id)
    claimed = (await db.execute(
        update(PlatformLinkToken).where(
            PlatformLinkToken.token == token, PlatformLinkToken.link_type == kind.link_type.value,
            PlatformLinkToken.used_at.is_(None), PlatformLinkToken.superseded_at.is_(None),
            PlatformLinkToken.expires_at > now,
        ).values(used_at=now, used_by_user_id=user_id)
        .returning(PlatformLinkToken.platform, PlatformLinkToken.target_id, PlatformLinkToken.display_name)
        .execution_options(synchronize_session=False)
    )).one_or_none()
    if claimed is None:
        await db.rollback()
        raise await _refusal(db, kind, token, now)
    platform, target_id, display_name = claimed
    link_id = (await db.execute(insert(kind.model).values(
        id=str(uuid.uuid4()), platform=platform, **{kind.target_column: target_id, kind.owner_column: user_id,
                                                    kind.name_column: display_name}, created_at=now,
    ).on_conflict_do_nothing().returning(kind.column("id")))).scalar_one_or_none()
    if link_id is None:
        await db.rollback()
        existing = await find_link(db, kind, platform, target_id)
        whose = "your account" if existing is not None and kind.owner_of(existing) == user_id else "another account"
        raise LinkAlreadyExists(kind.already_linked.format(whose=whose))
    await db.commit()
    log.info("%s link %s made for owner %s", kind.link_type.value, link_id, owner_tag(user_id))
    return (await db.execute(select(kind.model).where(kind.column("id") == link_id))).scalar_one()


async def confirm_server_link(db: AsyncSession, token: str, user_id: str) -> PlatformServerLink:
    return await _confirm(db, SERVER, token, user_id)


async def confirm_user_link(db: AsyncSession, token: str, user_id: str) -> PlatformUserLink:
    return await _confirm(db, USER, token, user_id)


async def list_links(db: AsyncSession, kind: LinkKind, user_id: str) -> Sequence[Link]:
    return (await db.execute(select(kind.model).where(kind.column(kind.owner_column) == user_id)
                             .order_by(kind.column("created_at").desc(), kind.column("id")))).scalars().all()


async def delete_link(db: AsyncSession, kind: LinkKind, link_id: str, user_id: str) -> str:
    """Deletes the caller's link (its conversations go with it, so the bot is refused at once).
    NotFound when there is no such link, NotAuthorized when it is someone else's."""
    parsed = _parse_id(link_id)
    link = (await db.execute(select(kind.model).where(kind.column("id") == parsed))).scalar_one_or_none() \
        if parsed else None
    if link is None:
        raise NotFound(kind.missing)
    if kind.owner_of(link) != user_id:
        raise NotAuthorized("This link belongs to another account.")
    await db.execute(delete(kind.model).where(kind.column("id") == parsed,
                                              kind.column(kind.owner_column) == user_id))
    await db.commit()
    log.info("%s link %s deleted by owner %s", kind.link_type.value, parsed, owner_tag(user_id))
    return parsed
