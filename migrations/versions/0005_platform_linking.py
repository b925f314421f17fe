"""Chat-platform linking: server links, DM (user) links, one-time link tokens, and the session of
each platform conversation.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _moment(name: str, nullable: bool) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "platform_server_links",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("platform_server_id", sa.String(255), nullable=False),
        sa.Column("owner_user_id", sa.String(128), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("server_name", sa.String(200), nullable=True),
        _moment("created_at", nullable=False),
        sa.UniqueConstraint("platform", "platform_server_id", name="uq_platform_server_links_server"),
    )
    op.create_index("ix_platform_server_links_owner_user_id", "platform_server_links", ["owner_user_id"])
    op.create_table(
        "platform_user_links",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("platform_user_id", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(128), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("platform_username", sa.String(200), nullable=True),
        _moment("created_at", nullable=False),
        sa.UniqueConstraint("platform", "platform_user_id", name="uq_platform_user_links_user"),
    )
    op.create_index("ix_platform_user_links_user_id", "platform_user_links", ["user_id"])
    op.create_table(
        "platform_link_tokens",
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column("link_type", sa.String(8), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("target_id", sa.String(255), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=True),
        _moment("created_at", nullable=False),
        _moment("expires_at", nullable=False),
        _moment("used_at", nullable=True),
        sa.Column("used_by_user_id", sa.String(128), nullable=True),
        _moment("superseded_at", nullable=True),
        sa.CheckConstraint("link_type IN ('SERVER', 'USER')", name="ck_platform_link_tokens_link_type"),
    )
    # At most one open token per target: issuing a new one supersedes the old in the same transaction.
    op.create_index("uq_platform_link_tokens_one_open", "platform_link_tokens", ["link_type", "platform", "target_id"],
                    unique=True, postgresql_where=sa.text("used_at IS NULL AND superseded_at IS NULL"))
    op.create_table(
        "platform_conversations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("server_link_id", sa.String(64), sa.ForeignKey("platform_server_links.id", ondelete="CASCADE"),
                  nullable=True),
        sa.Column("platform_channel_id", sa.String(255), nullable=True),
        sa.Column("user_link_id", sa.String(64), sa.ForeignKey("platform_user_links.id", ondelete="CASCADE"),
                  nullable=True),
        sa.Column("session_id", sa.String(64), sa.ForeignKey("chat_sessions.id", ondelete="CASCADE"), nullable=False),
        _moment("created_at", nullable=False),
        sa.CheckConstraint("(server_link_id IS NOT NULL AND platform_channel_id IS NOT NULL AND user_link_id IS NULL) "
                           "OR (user_link_id IS NOT NULL AND server_link_id IS NULL AND platform_channel_id IS NULL)",
                           name="ck_platform_conversations_one_link"),
        sa.UniqueConstraint("server_link_id", "platform_channel_id", name="uq_platform_conversations_channel"),
        sa.UniqueConstraint("user_link_id", name="uq_platform_conversations_dm"),
        sa.UniqueConstraint("session_id", name="uq_platform_conversations_session"),
    )


def downgrade() -> None:
    op.drop_table("platform_conversations")
    op.drop_index("uq_platform_link_tokens_one_open", "platform_link_tokens")
    op.drop_table("platform_link_tokens")
    op.drop_index("ix_platform_user_links_user_id", "platform_user_links")
    op.drop_table("platform_user_links")
    op.drop_index("ix_platform_server_links_owner_user_id", "platform_server_links")
    op.drop_table("platform_server_links")
