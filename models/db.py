"""Postgres tables. The Alembic migration in `migrations/versions` creates exactly these."""

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

MESSAGE_ROLES = ("user", "assistant", "tool", "reasoning", "system")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _timestamp() -> Any:
    return Field(default_factory=utcnow, sa_column_kwargs={"nullable": False}, sa_type=DateTime(timezone=True))


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: str = Field(primary_key=True, max_length=128)
    tier: str = Field(default="FREE", max_length=16)
    stripe_customer_id: Optional[str] = Field(
        default=None, sa_column=Column(String(255), nullable=True, unique=True))
    # From the token's `email` claim when it carries one (the admin usage view shows it); else null.
    email: Optional[str] = Field(default=None, max_length=320)
    created_at: datetime = _timestamp()


class ChatSession(SQLModel, table=True):
    __tablename__ = "chat_sessions"

    id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(sa_column=Column(String(128), ForeignKey("users.id", ondelete="CASCADE"), nullable=False,
                                          index=True))
    title: Optional[str] = Field(default=None, max_length=200)
    parent_session_id: Optional[str] = Field(
        default=None, sa_column=Column(String(64), ForeignKey("chat_sessions.id", ondelete="SET NULL"), nullable=True)
    )
    # "metadata" is reserved by SQLAlchemy's declarative base, hence the attribute name.
    session_metadata: dict = Field(default_factory=dict,
                                   sa_column=Column("metadata", JSONB, nullable=False, server_default="{}"))
    # Its tools change nothing outside its workspace (see `Tool.effects_outside_workspace`).
    dry_run: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default="false"))
    # The agent graph this session is the builder's chat for (its sub-sessions share it): its
    # turns see that graph, may change only it, and never get the tools BUILDER_BLOCKED_TOOLS names.
    builder_graph_id: Optional[str] = Field(default=None, max_length=128)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class BuilderChatSession(SQLModel, table=True):
    """Which session is the builder's chat for a user's graph: what `builder_graph_id` on create
    finds again. No foreign key to the session: a deleted session leaves the pointer stale, and
    the next create replaces it with a new session."""

    __tablename__ = "builder_chat_sessions"

    user_id: str = Field(sa_column=Column(String(128), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True))
    graph_id: str = Field(sa_column=Column(String(128), primary_key=True))
    session_id: str = Field(max_length=64)
    updated_at: datetime = _timestamp()


class AgentGraphRecord(SQLModel, table=True):
    """An agent graph of the local graph store (`agent_graphs/local_store.py`)."""

    __tablename__ = "agent_graphs"
    __table_args__ = (Index("ix_agent_graphs_owner_updated", "owner_id", "updated_at"),)

    id: str = Field(primary_key=True, max_length=64)
    owner_id: str = Field(sa_column=Column(String(128), ForeignKey("users.id", ondelete="CASCADE"), nullable=False))
    name: str = Field(max_length=200)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    version: int = Field(sa_column=Column(Integer, nullable=False))
    nodes: list = Field(default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]"))
    links: list = Field(default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]"))
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class ChatMessage(SQLModel, table=True):
    __tablename__ = "chat_messages"
    __table_args__ = (
        UniqueConstraint("session_id", "sequence", name="uq_chat_messages_session_sequence"),
        # A retried activity writes the same key again; the constraint turns that into a no-op.
        UniqueConstraint("session_id", "idempotency_key", name="uq_chat_messages_session_idempotency_key"),
        CheckConstraint(f"role IN {MESSAGE_ROLES}", name="ck_chat_messages_role"),
    )

    id: Optional[int] = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    session_id: str = Field(sa_column=Column(String(64), ForeignKey("chat_sessions.id", ondelete="CASCADE"), nullable=False))
    sequence: int
    role: str = Field(max_length=16)
    content: str = ""
    tool_calls: Optional[list] = Field(default=None, sa_column=Column(JSONB, nullable=True))
    tool_call_id: Optional[str] = Field(default=None, max_length=128)
    turn_id: Optional[str] = Field(default=None, max_length=64)
    idempotency_key: Optional[str] = Field(default=None, max_length=200)
    # What the model was given with a user message besides its text (page, attached files).
    context: Optional[dict] = Field(default=None, sa_column=Column(JSONB, nullable=True))
    is_user_message: bool = Field(default=True, sa_column=Column(Boolean, nullable=False, server_default="true"))
    created_at: datetime = _timestamp()


class CreditEntry(SQLModel, table=True):
    """The credit ledger: a grant is positive, a charge negative; the balance is the sum.
    The idempotency key (turn and tool call for a charge) makes a retried charge a no-op."""

    __tablename__ = "credit_ledger"

    id: Optional[int] = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    user_id: str = Field(sa_column=Column(String(128), ForeignKey("users.id", ondelete="CASCADE"), nullable=False,
                                          index=True))
    amount: int
    reason: str = Field(max_length=200)
    idempotency_key: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    created_at: datetime = _timestamp()


class WorkspaceFile(SQLModel, table=True):
    __tablename__ = "workspace_files"

    id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(sa_column=Column(String(128), ForeignKey("users.id", ondelete="CASCADE"), nullable=False,
                                          index=True))
    session_id: Optional[str] = Field(default=None, max_length=64)
    name: str = Field(max_length=128)
    size_bytes: int
    content_type: str = Field(default="text/plain", max_length=100)
    created_at: datetime = _timestamp()


class ModelUsage(SQLModel, table=True):
    """What one model round really cost, as the provider reported it (the record of spend)."""

    __tablename__ = "model_usage"
    __table_args__ = (UniqueConstraint("turn_id", "round_index", name="uq_model_usage_turn_round"),)

    id: Optional[int] = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    user_id: str = Field(sa_column=Column(String(128), ForeignKey("users.id", ondelete="CASCADE"), nullable=False))
    session_id: str = Field(max_length=64)
    turn_id: str = Field(max_length=64)
    round_index: int
    model: str = Field(max_length=200)
    prompt_tokens: int
    completion_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_microdollars: Optional[int] = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = _timestamp()


class StripeEvent(SQLModel, table=True):
    """Webhook events already handed to a workflow: a replayed event id is ignored."""

    __tablename__ = "stripe_events"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    user_id: Optional[str] = Field(default=None, max_length=128)
    received_at: datetime = _timestamp()


class SessionShare(SQLModel, table=True):
    """A session shared read-only by link: at most one share per session, and sharing again
    rotates the token. The share shows the conversation as it was when shared (through
    `through_sequence`) and exactly the files that part of it referred to (`SharedSessionFile`)."""

    __tablename__ = "session_shares"

    session_id: str = Field(sa_column=Column(String(64), ForeignKey("chat_sessions.id", ondelete="CASCADE"),
                                             primary_key=True))
    share_token: str = Field(sa_column=Column(String(36), nullable=False, unique=True))
    through_sequence: int
    shared_at: datetime = _timestamp()


class SharedSessionFile(SQLModel, table=True):
    """The allowlist of a share: the one thing the public download checks. Its token has no ON
    UPDATE rule, so a token cannot change while files are listed under it: rotating deletes the
    old list first, and the new one is written afresh (never merged)."""

    __tablename__ = "shared_session_files"
    __table_args__ = (UniqueConstraint("share_token", "file_id", name="uq_shared_session_files_token_file"),)

    id: Optional[int] = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    share_token: str = Field(sa_column=Column(String(36), ForeignKey("session_shares.share_token", ondelete="CASCADE"),
                                              nullable=False))
    session_id: str = Field(sa_column=Column(String(64), ForeignKey("chat_sessions.id", ondelete="CASCADE"),
                                             nullable=False, index=True))
    file_id: str = Field(sa_column=Column(String(64), ForeignKey("workspace_files.id", ondelete="CASCADE"),
                                          nullable=False))
    created_at: datetime = _timestamp()


class AdminAuditEntry(SQLModel, table=True):
    """What an operator did through the admin API: who, when, what, and how it ended."""

    __tablename__ = "admin_audit"

    id: Optional[int] = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    admin_id: str = Field(max_length=128)
    action: str = Field(max_length=64)
    # The session the action was about; null for one over many (a bulk stop names them in details).
    target: Optional[str] = Field(default=None, max_length=64)
    reason: Optional[str] = Field(default=None, max_length=500)
    outcome: str = Field(max_length=64)
    details: dict = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}"))
    created_at: datetime = Field(default_factory=utcnow, sa_column_kwargs={"nullable": False, "index": True},
                                 sa_type=DateTime(timezone=True))
