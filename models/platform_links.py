"""Chat-platform linking tables: who owns a linked server or a person's direct messages, the
one-time tokens that make a link, and the copilot session each platform conversation talks to.

Created by `migrations/versions/0005_platform_linking.py`. A platform's own ids (servers,
channels, people) are stored here and nowhere else: never in logs, never in another owner's
answers.
"""

from datetime import datetime
from typing import Optional

from sqlalchemy import CheckConstraint, Column, DateTime, ForeignKey, Index, String, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.db import _timestamp
from models.platforms import PLATFORM_ID_MAX_CHARS, TOKEN_MAX_CHARS


def _platform_column() -> Column:
    return Column(String(16), nullable=False)


def _platform_id_column(nullable: bool = False) -> Column:
    return Column(String(PLATFORM_ID_MAX_CHARS), nullable=nullable)


def _moment(nullable: bool) -> Column:
    return Column(DateTime(timezone=True), nullable=nullable)


class PlatformServerLink(SQLModel, table=True):
    """A server (Discord guild, Telegram group, ...) linked to the account that pays for it."""

    __tablename__ = "platform_server_links"
    __table_args__ = (UniqueConstraint("platform", "platform_server_id", name="uq_platform_server_links_server"),)

    id: str = Field(primary_key=True, max_length=64)
    platform: str = Field(sa_column=_platform_column())
    platform_server_id: str = Field(sa_column=_platform_id_column())
    owner_user_id: str = Field(sa_column=Column(String(128), ForeignKey("users.id", ondelete="CASCADE"),
                                                nullable=False, index=True))
    server_name: Optional[str] = Field(default=None, max_length=200)
    created_at: datetime = _timestamp()


class PlatformUserLink(SQLModel, table=True):
    """A person's direct messages with the bot, linked to their own account."""

    __tablename__ = "platform_user_links"
    __table_args__ = (UniqueConstraint("platform", "platform_user_id", name="uq_platform_user_links_user"),)

    id: str = Field(primary_key=True, max_length=64)
    platform: str = Field(sa_column=_platform_column())
    platform_user_id: str = Field(sa_column=_platform_id_column())
    user_id: str = Field(sa_column=Column(String(128), ForeignKey("users.id", ondelete="CASCADE"), nullable=False,
                                          index=True))
    platform_username: Optional[str] = Field(default=None, max_length=200)
    created_at: datetime = _timestamp()


class PlatformLinkToken(SQLModel, table=True):
    """A one-time token a bot hands a person to open the link page with. `target_id` is the
    platform's server id (SERVER) or person id (USER).

    At most one token per target is open (neither used nor superseded): the partial unique index
    makes issuing a new one and superseding the old one race-free. A token is expired when
    `expires_at` has passed; the confirm is one conditional UPDATE of `used_at`."""

    __tablename__ = "platform_link_tokens"
    __table_args__ = (
        CheckConstraint("link_type IN ('SERVER', 'USER')", name="ck_platform_link_tokens_link_type"),
        Index("uq_platform_link_tokens_one_open", "link_type", "platform", "target_id", unique=True,
              postgresql_where=text("used_at IS NULL AND superseded_at IS NULL")),
    )

    token: str = Field(primary_key=True, max_length=TOKEN_MAX_CHARS)
    link_type: str = Field(max_length=8)
    platform: str = Field(sa_column=_platform_column())
    target_id: str = Field(sa_column=_platform_id_column())
    display_name: Optional[str] = Field(default=None, max_length=200)
    created_at: datetime = _timestamp()
    expires_at: datetime = Field(sa_column=_moment(nullable=False))
    used_at: Optional[datetime] = Field(default=None, sa_column=_moment(nullable=True))
    used_by_user_id: Optional[str] = Field(default=None, max_length=128)
    superseded_at: Optional[datetime] = Field(default=None, sa_column=_moment(nullable=True))


class PlatformConversation(SQLModel, table=True):
    """The owner's copilot session for one server channel, or for one person's DMs. Deleting the
    link deletes these rows (the sessions stay the owner's); deleting the session deletes its row,
    and the next message starts a new session."""

    __tablename__ = "platform_conversations"
    __table_args__ = (
        CheckConstraint("(server_link_id IS NOT NULL AND platform_channel_id IS NOT NULL AND user_link_id IS NULL) "
                        "OR (user_link_id IS NOT NULL AND server_link_id IS NULL AND platform_channel_id IS NULL)",
                        name="ck_platform_conversations_one_link"),
        UniqueConstraint("server_link_id", "platform_channel_id", name="uq_platform_conversations_channel"),
        UniqueConstraint("user_link_id", name="uq_platform_conversations_dm"),
        UniqueConstraint("session_id", name="uq_platform_conversations_session"),
    )

    id: str = Field(primary_key=True, max_length=64)
    server_link_id: Optional[str] = Field(default=None, sa_column=Column(
        String(64), ForeignKey("platform_server_links.id", ondelete="CASCADE"), nullable=True))
    platform_channel_id: Optional[str] = Field(default=None, sa_column=_platform_id_column(nullable=True))
    user_link_id: Optional[str] = Field(default=None, sa_column=Column(
        String(64), ForeignKey("platform_user_links.id", ondelete="CASCADE"), nullable=True))
    session_id: str = Field(sa_column=Column(String(64), ForeignKey("chat_sessions.id", ondelete="CASCADE"),
                                             nullable=False))
    created_at: datetime = _timestamp()
