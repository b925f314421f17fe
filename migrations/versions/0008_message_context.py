"""What a user message carried besides its text (page context, attached files), whether the user
typed it, and dry-run sessions.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("chat_messages", sa.Column("context", JSONB, nullable=True))
    op.add_column("chat_messages", sa.Column("is_user_message", sa.Boolean, nullable=False, server_default="true"))
    op.add_column("chat_sessions", sa.Column("dry_run", sa.Boolean, nullable=False, server_default="false"))


def downgrade() -> None:
    op.drop_column("chat_sessions", "dry_run")
    op.drop_column("chat_messages", "is_user_message")
    op.drop_column("chat_messages", "context")
