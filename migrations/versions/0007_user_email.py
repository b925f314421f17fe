"""The user's email (the token's `email` claim, when it carries one), for the admin usage view.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("email", sa.String(320), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "email")
