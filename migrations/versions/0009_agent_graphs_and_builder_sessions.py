"""Agent graphs (the local graph store), and the builder's chat sessions: the graph a session is
bound to, and the pointer from a user's graph to its builder session.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_graphs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner_id", sa.String(128), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("nodes", JSONB, nullable=False, server_default="[]"),
        sa.Column("links", JSONB, nullable=False, server_default="[]"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_agent_graphs_owner_updated", "agent_graphs", ["owner_id", "updated_at"])
    op.add_column("chat_sessions", sa.Column("builder_graph_id", sa.String(128), nullable=True))
    op.create_table(
        "builder_chat_sessions",
        sa.Column("user_id", sa.String(128), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("graph_id", sa.String(128), primary_key=True),
        # No foreign key: a deleted session leaves the pointer stale, and the next create replaces it.
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("builder_chat_sessions")
    op.drop_column("chat_sessions", "builder_graph_id")
    op.drop_index("ix_agent_graphs_owner_updated", table_name="agent_graphs")
    op.drop_table("agent_graphs")
