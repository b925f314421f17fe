"""Public sharing of a session with its file allowlist, and the audit log of operator actions.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "session_shares",
        sa.Column("session_id", sa.String(64), sa.ForeignKey("chat_sessions.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("share_token", sa.String(36), nullable=False, unique=True),
        sa.Column("through_sequence", sa.Integer, nullable=False),
        sa.Column("shared_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "shared_session_files",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        # No ON UPDATE: the token cannot be rotated under listed files (the old list goes first).
        sa.Column("share_token", sa.String(36), sa.ForeignKey("session_shares.share_token", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("session_id", sa.String(64), sa.ForeignKey("chat_sessions.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("file_id", sa.String(64), sa.ForeignKey("workspace_files.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("share_token", "file_id", name="uq_shared_session_files_token_file"),
    )
    op.create_index("ix_shared_session_files_session_id", "shared_session_files", ["session_id"])
    op.create_table(
        "admin_audit",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("admin_id", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("details", JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_admin_audit_created_at", "admin_audit", ["created_at"])


def downgrade() -> None:
    op.drop_table("admin_audit")
    op.drop_table("shared_session_files")
    op.drop_table("session_shares")
