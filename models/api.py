"""Request and response bodies of the REST API."""

import json
from datetime import datetime
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, field_validator

from models.subscription import ChangeTierRequest, SelfServiceTier, Tier
from models.text import refuse_unstorable
from models.tool_filter import ToolFilter
from models.turn import ApprovalRequest, ChatMode, IncomingMessage, MessageContext, ModelChoice, ToolCallEntry, TurnOutcome


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Optional[Any] = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ValidationIssue(BaseModel):
    loc: list[Union[str, int]] = Field(description='Where the problem is, e.g. ["body", "message"].')
    msg: str
    type: Optional[str] = None


class ValidationErrorDetail(BaseModel):
    code: str = Field(description="`invalid_request`, `invalid_json`, or a route's own (e.g. `invalid_message`).")
    message: str
    details: Optional[list[ValidationIssue]] = None


class ValidationErrorResponse(BaseModel):
    """Every 422: the request's shape or values are refused, by the schema or by a route's own rule."""

    error: ValidationErrorDetail


# Request bodies are strict: a JSON value of the wrong type (`"60"` for a number, `0` for a boolean)
# is refused as the spec's types say, not coerced.
REQUEST = ConfigDict(extra="forbid", strict=True)

# Text that PostgreSQL can store holds no NUL (see models/text.py); the validators refuse it, and
# these patterns say so in the spec.
NO_NUL = r"^[^\x00]*$"
# Python's `str.isspace()` characters, spelled out so that every regex engine that reads the spec
# agrees with the server on what a blank message is.
_BLANK = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = rf"^[^\x00]*[^\x00{_BLANK}][^\x00]*$"
# A tool's name as models call it (OpenAI's function-name rule), which every tool name satisfies.
ToolName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]

METADATA_MAX_BYTES = 16 * 1024
METADATA_MAX_DEPTH = 5


def _json_value_schema(depth: int) -> dict[str, Any]:
    """The JSON schema of a value nested at most `depth` levels (as `_depth` counts), with no NUL in
    its strings or keys: what the metadata validators accept, short of the size limit."""
    scalar: dict[str, Any] = {"type": ["string", "number", "boolean", "null"], "pattern": NO_NUL}
    if depth == 0:
        return scalar
    inner = _json_value_schema(depth - 1)
    return {"anyOf": [scalar, {"type": "array", "items": inner},
                      {"type": "object", "propertyNames": {"pattern": NO_NUL}, "additionalProperties": inner}]}


METADATA_SCHEMA = {"type": "object", "propertyNames": {"pattern": NO_NUL},
                   "additionalProperties": _json_value_schema(METADATA_MAX_DEPTH - 1),
                   "description": f"Any JSON object, at most {METADATA_MAX_BYTES} bytes as JSON and nested at most "
                                  f"{METADATA_MAX_DEPTH} levels, without a `tool_filter` key."}


def refuse_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("message is empty")
    return refuse_unstorable(value, "message")


class ToolFilterRequest(ToolFilter):
    """A session's tool filter as the API takes it: tool names only (unknown ones match nothing)."""

    model_config = REQUEST

    allow: Optional[list[ToolName]] = Field(default=None, description="Only these tools (null: all).")
    deny: list[ToolName] = Field(default_factory=list, description="Never these tools.")


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


class CreateSessionRequest(BaseModel):
    model_config = ConfigDict(**REQUEST, json_schema_extra={"examples": [
        {}, {"title": "Trip planning", "metadata": {"source": "web", "tags": ["travel"]},
             "tool_filter": {"deny": ["bash_exec"]}}]})

    title: Optional[str] = Field(default=None, max_length=200, json_schema_extra={"pattern": NO_NUL})
    metadata: dict[str, Any] = Field(default_factory=dict, json_schema_extra=METADATA_SCHEMA)
    tool_filter: Optional[ToolFilterRequest] = Field(default=None, description="Limit the tools this session may use.")
    dry_run: bool = Field(default=False, description="Tools that would change something outside the session's "
                                                     "workspace are not run; the model is told what they would do.")
    require_approval: list[ToolName] = Field(default_factory=list, max_length=50, description=(
        "Tools whose calls wait for your approval in this session, on top of those the server requires."))

    @field_validator("title", "metadata")
    @classmethod
    def _storable(cls, value: Any, info) -> Any:
        return refuse_unstorable(value, info.field_name)

    @field_validator("metadata")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        for reserved in ("tool_filter", "require_approval"):
            if reserved in value:
                raise ValueError(f"metadata.{reserved} is set through the {reserved} field")
        if len(json.dumps(value, default=str)) > METADATA_MAX_BYTES:
            raise ValueError(f"metadata is larger than {METADATA_MAX_BYTES} bytes of JSON")
        if _depth(value) > METADATA_MAX_DEPTH:
            raise ValueError(f"metadata nests deeper than {METADATA_MAX_DEPTH} levels")
        return value


class SessionSummary(BaseModel):
    id: str
    title: Optional[str]
    parent_session_id: Optional[str]
    metadata: dict[str, Any]
    dry_run: bool = False
    created_at: datetime
    updated_at: datetime


class SessionPage(BaseModel):
    sessions: list[SessionSummary]
    total: int
    limit: int
    offset: int


class MessageOut(BaseModel):
    sequence: int
    role: Literal["user", "assistant", "tool", "reasoning", "system"]
    content: str
    tool_calls: Optional[list[dict[str, Any]]] = None
    tool_call_id: Optional[str] = None
    turn_id: Optional[str] = None
    context: Optional[MessageContext] = Field(default=None, description="What came with a user message: the page "
                                                                        "the user was on, attached files.")
    is_user_message: bool = Field(default=True, description="False for a message the front end sent on the "
                                                            "user's behalf (not shown as typed by them).")
    created_at: datetime


class LiveTurn(BaseModel):
    turn_id: str
    status: str
    round: int
    buffer_length: int
    max_buffer_length: int
    pending: list[IncomingMessage]
    awaiting_approval: list[ApprovalRequest] = Field(default_factory=list,
                                                     description="Tool calls waiting for your approval.")


class SessionDetail(SessionSummary):
    messages: list[MessageOut]
    active_turn: Optional[LiveTurn] = Field(description="The running turn, read from its workflow; null when idle.")


MAX_ATTACHED_FILES = 20
# A workspace file: its id (32 hex digits) or its URI.
FileRef = Annotated[str, StringConstraints(pattern=r"^(workspace://)?[0-9a-f]{32}$")]
PAGE_URL_MAX_CHARS = 2_048
PAGE_CONTENT_MAX_CHARS = 32_000


class PageContextRequest(BaseModel):
    """The page the user is on; given to the model with this message only."""

    model_config = ConfigDict(extra="ignore")  # the front end may send more about the page

    url: str = Field(default="", max_length=PAGE_URL_MAX_CHARS)
    content: str = Field(default="", max_length=PAGE_CONTENT_MAX_CHARS)

    @field_validator("url", "content")
    @classmethod
    def _storable(cls, value: str, info) -> str:
        return refuse_unstorable(value, f"context.{info.field_name}")


class SendMessageRequest(BaseModel):
    model_config = ConfigDict(**REQUEST, json_schema_extra={"examples": [{"message": "What time is it?"}]})

    # Its maxLength in the spec is the server's `max_message_chars` (api/openapi.py).
    message: str = Field(min_length=1, description="The user's message: not blank.",
                         json_schema_extra={"pattern": NOT_BLANK})
    is_user_message: bool = Field(default=True, description="False for a nudge the front end sends on the user's "
                                                            "behalf: the model reads it, the transcript marks it.")
    context: Optional[PageContextRequest] = None
    file_ids: list[FileRef] = Field(default_factory=list, max_length=MAX_ATTACHED_FILES,
                                description="Workspace files (ids or workspace:// URIs) to attach to the message.")
    mode: ChatMode = Field(default="fast", description="extended_thinking: the thinking model.")
    model: ModelChoice = Field(default="standard", description="advanced: the configured advanced model.")

    @field_validator("message")
    @classmethod
    def _storable(cls, value: str) -> str:
        return refuse_blank(value)


class QueuedResponse(BaseModel):
    """Answer of `POST .../stream` when a turn is already running: the message waits in its buffer."""

    turn_id: str
    message_id: str
    queued: Literal[True] = True
    turn_in_flight: Literal[True] = True
    buffer_length: int
    max_buffer_length: int


class PendingMessages(BaseModel):
    """The running turn's buffer of queued follow-ups (a peek: nothing is drained)."""

    turn_in_flight: bool
    buffer_length: int
    max_buffer_length: int
    messages: list[IncomingMessage]


class StopResponse(BaseModel):
    stopped: bool = Field(description="True when a running turn was stopped; false when the session was idle.")


SYSTEM_CONTEXT_MAX_CHARS = 16_000


def _whole_number(value: Any) -> Any:
    # JSON does not tell 3 from 3.0, and JSON Schema calls both integers: take both, nothing else.
    return int(value) if isinstance(value, float) and value.is_integer() else value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]


class RunTurnRequest(BaseModel):
    model_config = ConfigDict(**REQUEST, json_schema_extra={"examples": [{"message": "Hello", "wait_seconds": 30}]})

    message: str = Field(min_length=1, description="The user's message: not blank.",
                         json_schema_extra={"pattern": NOT_BLANK})
    wait_seconds: float = Field(default=60, ge=0, le=6 * 3600, description="How long to wait for the answer.")
    system_context: Optional[str] = Field(default=None, max_length=SYSTEM_CONTEXT_MAX_CHARS,
                                          description="Prepended to the message as `[System Context: ...]`.")
    max_recursion_depth: WholeNumber = Field(default=3, ge=1, le=10, description="How deep calls from turns into turns "
                                                                         "may nest.")
    recursion_depth: WholeNumber = Field(default=0, ge=0, le=100, description="How deep the caller already is: 0 for a "
                                                                      "call from outside any turn.")

    @field_validator("message", "system_context")
    @classmethod
    def _storable(cls, value: Optional[str], info) -> Optional[str]:
        return refuse_blank(value) if info.field_name == "message" else refuse_unstorable(value, info.field_name)


class ServiceTurnRequest(RunTurnRequest):
    session_id: Optional[str] = Field(default=None, pattern=r"^[0-9a-fA-F-]{36}$",
                                      description="The user's session to run it in; a new session when absent.")


class ToolApprovalDecision(BaseModel):
    model_config = ConfigDict(**REQUEST, json_schema_extra={"examples": [{"approved": True},
                                                                         {"approved": False, "reason": "Not now."}]})

    approved: bool
    reason: Optional[str] = Field(default=None, max_length=2_000, description="Given to the model with a denial.",
                                  json_schema_extra={"pattern": NO_NUL})

    @field_validator("reason")
    @classmethod
    def _storable(cls, value: Optional[str]) -> Optional[str]:
        return refuse_unstorable(value, "reason")



class HistoryEntry(BaseModel):
    role: Literal["user", "assistant"]
    content: str
    tool_calls: Optional[list[ToolCallEntry]] = None


class TurnAnswer(TurnOutcome):
    """`POST .../turns`: the turn's outcome as a graph block reads it."""

    session_id: str
    conversation_history: list[HistoryEntry] = Field(
        default_factory=list, description="The message as the turn received it and the answer with its tool calls.")


class WorkspaceFileOut(BaseModel):
    id: str
    uri: str
    name: str
    size_bytes: int
    content_type: str
    session_id: Optional[str]
    created_at: datetime


class WindowPublic(BaseModel):
    percent_used: float = Field(ge=0, le=100, description="100 when the window is used up.")
    resets_at: datetime


class MonthlySpendPublic(BaseModel):
    credits_spent: int = Field(ge=0, description="What the model rounds of this calendar month (UTC) cost, in "
                                                 "credits (1 credit = 1 cent; the month's total, rounded to the "
                                                 "nearest credit).")
    month_start: datetime = Field(description="00:00 UTC on the first day of this month.")


class UsagePublic(BaseModel):
    """Spend as a user sees it: percentages and credits only, never raw amounts or limits."""

    daily: Optional[WindowPublic] = Field(description="null when the window has no limit")
    weekly: Optional[WindowPublic]
    tier: str
    reset_cost: int = Field(description="Credits to reset the daily window; 0 when resets are off.")
    monthly_spend: MonthlySpendPublic


class UsageResetResponse(BaseModel):
    success: bool
    credits_charged: int
    remaining_balance: int
    usage: UsagePublic


class AdminUsage(BaseModel):
    user_id: str
    user_email: Optional[str] = Field(default=None, description="The email the user's token carried; null when "
                                                                "none is known.")
    tier: str
    daily_cost_limit_microdollars: int
    daily_cost_used_microdollars: int
    weekly_cost_limit_microdollars: int
    weekly_cost_used_microdollars: int


class AdminResetRequest(BaseModel):
    model_config = ConfigDict(**REQUEST, json_schema_extra={"examples": [{}, {"reset_weekly": True}]})

    reset_weekly: bool = False


class SetTierRequest(BaseModel):
    model_config = ConfigDict(**REQUEST, json_schema_extra={"examples": [{"tier": "PRO"}]})

    tier: Tier


class SubscriptionTierRequest(ChangeTierRequest):
    # success_url and cancel_url: their pattern and examples in the spec come from the server's
    # front-end origin (api/openapi.py).
    model_config = REQUEST


class SubscriptionStatus(BaseModel):
    tier: Tier
    monthly_cost: int = Field(description="What the current tier costs a month, in cents.")
    tier_costs: dict[str, int] = Field(description="Monthly cost of each self-service tier, in cents.")
    proration_credit_cents: int = Field(ge=0, description="The unused part of the current paid period, in cents, "
                                                          "that an upgrade (prorated at once) credits; 0 on FREE or "
                                                          "a tier with no Stripe subscription.")
    pending_tier: Optional[SelfServiceTier] = None
    pending_tier_effective_at: Optional[datetime] = Field(
        default=None, description="When the pending change takes effect (the end of the current period).")
    url: str = Field(default="", description="A Stripe Checkout URL to redirect to; set only when a FREE user "
                                             "moves to a paid tier, empty otherwise.")


class WebhookReceipt(BaseModel):
    received: bool = True
    outcome: Literal["delivered", "duplicate", "ignored", "unknown_customer"]


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    checks: dict[str, str]
