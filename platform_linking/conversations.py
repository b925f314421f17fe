"""The owner's copilot session of each platform conversation: one per server channel, one per
person's direct messages, made on the conversation's first message and remembered in
`platform_conversations`."""

import uuid
from dataclasses import dataclass
from typing import Iterable, Optional

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing.accounts import open_account
from models.db import ChatSession, utcnow
from models.platform_links import PlatformConversation, PlatformServerLink, PlatformUserLink
from models.platforms import LinkType
from models.tool_filter import ToolFilter
from platform_linking.links import find_server_link, find_user_link

# Everyone in a linked server talks to the owner's assistant, but only the owner may see the
# owner's files: these two tools reach every workspace file of the user, not only the session's.
# A server channel's session is made without them (its sub-sessions inherit that); DMs are the
# owner alone and keep every tool.
SERVER_DENIED_TOOLS = ("list_workspace_files", "read_workspace_file")
SOURCE = "platform-bot"


@dataclass(frozen=True)
class ChatTarget:
    """Where a platform message goes: the link it came through and the account that pays."""

    link_type: LinkType
    link_id: str
    owner_user_id: str
    platform: str
    channel_id: Optional[str]
    title: str


def _platform_label(platform: str) -> str:
    return platform.capitalize()


async def find_chat_target(db: AsyncSession, platform: str, platform_user_id: str, platform_server_id: Optional[str],
                           platform_channel_id: Optional[str]) -> Optional[ChatTarget]:
    """The server's link (with a server id) or the person's DM link; None when not linked. No
    fallback: a server member without a server link is not served by their own DM link."""
    if platform_server_id is not None:
        server = await find_server_link(db, platform, platform_server_id)
        if server is None:
            return None
        title = f"{_platform_label(platform)}: {server.server_name or 'linked server'}"
        return ChatTarget(LinkType.SERVER, server.id, server.owner_user_id, platform, platform_channel_id, title)
    person = await find_user_link(db, platform, platform_user_id)
    if person is None:
        return None
    return ChatTarget(LinkType.USER, person.id, person.user_id, platform, None,
                      f"{_platform_label(platform)}: direct messages")


def _same_conversation(target: ChatTarget):
    if target.link_type == LinkType.SERVER:
        return (PlatformConversation.server_link_id == target.link_id,
                PlatformConversation.platform_channel_id == target.channel_id)
    return (PlatformConversation.user_link_id == target.link_id,)


async def _remembered_session(db: AsyncSession, target: ChatTarget) -> Optional[ChatSession]:
    return (await db.execute(
        select(ChatSession).join(PlatformConversation, PlatformConversation.session_id == ChatSession.id)
        .where(*_same_conversation(target), ChatSession.user_id == target.owner_user_id)
    )).scalar_one_or_none()


def _session_metadata(target: ChatTarget) -> dict:
    metadata: dict = {"source": SOURCE, "platform": target.platform, "link_type": target.link_type.value}
    if target.link_type == LinkType.SERVER:
        metadata["tool_filter"] = ToolFilter(deny=list(SERVER_DENIED_TOOLS)).model_dump()
    return metadata


async def conversation_session(db: AsyncSession, target: ChatTarget, welcome_credits: int) -> Optional[ChatSession]:
    """The owner's session of this conversation, made (with the owner's account) on its first
    message. Two first messages at once make one: the second insert meets the unique constraint
    and rolls its session back. None when the link was deleted meanwhile."""
    remembered = await _remembered_session(db, target)
    if remembered is not None:
        return remembered
    now = utcnow()
    await open_account(db, target.owner_user_id, welcome_credits)
    session = ChatSession(id=str(uuid.uuid4()), user_id=target.owner_user_id, title=target.title,
                          session_metadata=_session_metadata(target), created_at=now, updated_at=now)
    db.add(session)
    try:
        await db.flush()
        link_column = "server_link_id" if target.link_type == LinkType.SERVER else "user_link_id"
        made = (await db.execute(insert(PlatformConversation).values(
            id=str(uuid.uuid4()), session_id=session.id, platform_channel_id=target.channel_id,
            created_at=now, **{link_column: target.link_id},
        ).on_conflict_do_nothing().returning(PlatformConversation.id))).scalar_one_or_none()
    except IntegrityError:  # the link is gone (its foreign key): nothing to talk to
        await db.rollback()
        return None
    if made is None:
        await db.rollback()
        return await _remembered_session(db, target)
    await db.commit()
    return session


async def bot_session(db: AsyncSession, session_id: str, platforms: Iterable[str]) -> Optional[ChatSession]:
    """The session if it is a conversation of a live link on one of these platforms: what a bot may
    follow and stop. Any other session, the owner's own ones included, looks missing."""
    try:
        parsed = str(uuid.UUID(session_id))
    except ValueError:
        return None
    allowed = list(platforms)
    return (await db.execute(
        select(ChatSession).join(PlatformConversation, PlatformConversation.session_id == ChatSession.id)
        .outerjoin(PlatformServerLink, PlatformConversation.server_link_id == PlatformServerLink.id)
        .outerjoin(PlatformUserLink, PlatformConversation.user_link_id == PlatformUserLink.id)
        .where(ChatSession.id == parsed,
               or_(PlatformServerLink.platform.in_(allowed), PlatformUserLink.platform.in_(allowed)))
    )).scalar_one_or_none()
