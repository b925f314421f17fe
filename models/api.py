"""Request and response bodies of the REST API."""

import json
from datetime import datetime
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, RootModel, StringConstraints, field_validator

from models.agent_graph import (
    GRAPH_DESCRIPTION_MAX_CHARS,
    GRAPH_ID_MAX_CHARS,
    GRAPH_NAME_MAX_CHARS,
    MAX_GRAPH_LINKS,
    MAX_GRAPH_NODES,
    NODE_JSON_MAX_DEPTH,
    GraphLink,
    GraphNode,
    GraphSummary,
)
from models.subscription import ChangeTierRequest, SelfServiceTier, Tier
from models.text import NO_NUL, json_depth, json_object_schema, refuse_unstorable
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

# Python's `str.isspace()` characters, spelled out so that every regex engine that reads the spec
# agrees with the server on what a blank message is.
_BLANK = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = rf"^[^\x00]*[^\x00{_BLANK}][^\x00]*$"
# A tool's name as models call it (OpenAI's function-name rule), which every tool name satisfies.
ToolName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]

METADATA_MAX_BYTES = 16 * 1024
METADATA_MAX_DEPTH = 5


METADATA_SCHEMA = json_object_schema(METADATA_MAX_DEPTH, f"Any JSON object, at most {METADATA_MAX_BYTES} bytes as "
                                     f"JSON and nested at most {METADATA_MAX_DEPTH} levels, without a `tool_filter` key.")


def refuse_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("message is empty")
    return refuse_unstorable(value, "message")


class ToolFilterRequest(ToolFilter):
    """A session's tool filter as the API takes it: tool names only (unknown ones match nothing)."""

    model_config = REQUEST

    allow: Optional[list[ToolName]] = Field(default=None, description="Only these tools (null: all).")
    deny: list[ToolName] = Field(default_factory=list, description="Never these tools.")


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
    builder_graph_id: Optional[str] = Field(
        default=None, min_length=1, max_length=GRAPH_ID_MAX_CHARS, json_schema_extra={"pattern": NO_NUL},
        description="The builder's chat for this agent graph of yours: its one session, created on first use (201) "
                    "and answered again after (200). `dry_run` does not apply; `title`, `metadata` and `tool_filter` "
                    "only when it is created.")

    @field_validator("title", "metadata", "builder_graph_id")
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
        if json_depth(value) > METADATA_MAX_DEPTH:
            raise ValueError(f"metadata nests deeper than {METADATA_MAX_DEPTH} levels")
        return value


class SessionSummary(BaseModel):
    id: str
    title: Optional[str]
    parent_session_id: Optional[str]
    metadata: dict[str, Any]
    dry_run: bool = False
    builder_graph_id: Optional[str] = Field(default=None, description="The agent graph this session is the "
                                                                      "builder's chat for; null for any other.")
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


class WorkspaceFileList(RootModel[list[WorkspaceFileOut]]):
    """The caller's workspace files, newest first."""



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


NODE_JSON_SCHEMA = json_object_schema(NODE_JSON_MAX_DEPTH, f"Any JSON object nested at most {NODE_JSON_MAX_DEPTH} "
                                                           "levels.")
_GRAPH_TEXT = {"pattern": NO_NUL}


class GraphNodeBody(GraphNode):
    model_config = REQUEST

    id: str = Field(min_length=1, max_length=GRAPH_ID_MAX_CHARS, json_schema_extra=_GRAPH_TEXT,
                    description="Unique within the graph.")
    block_id: str = Field(min_length=1, max_length=GRAPH_ID_MAX_CHARS, json_schema_extra=_GRAPH_TEXT,
                          description="The block this node runs.")
    input_default: dict[str, Any] = Field(default_factory=dict, json_schema_extra=NODE_JSON_SCHEMA,
                                          description="Fixed values of the block's inputs.")
    metadata: dict[str, Any] = Field(default_factory=dict, json_schema_extra=NODE_JSON_SCHEMA,
                                     description="For the builder (position, label...).")

    @field_validator("id", "block_id", "input_default", "metadata")
    @classmethod
    def _storable(cls, value: Any, info) -> Any:
        refuse_unstorable(value, f"nodes.{info.field_name}")
        if isinstance(value, dict) and json_depth(value) > NODE_JSON_MAX_DEPTH:
            raise ValueError(f"nodes.{info.field_name} nests deeper than {NODE_JSON_MAX_DEPTH} levels")
        return value


class GraphLinkBody(GraphLink):
    model_config = REQUEST

    source_id: str = Field(max_length=GRAPH_ID_MAX_CHARS, json_schema_extra=_GRAPH_TEXT)
    source_name: str = Field(max_length=GRAPH_ID_MAX_CHARS, json_schema_extra=_GRAPH_TEXT,
                             description="The source's output.")
    sink_id: str = Field(max_length=GRAPH_ID_MAX_CHARS, json_schema_extra=_GRAPH_TEXT)
    sink_name: str = Field(max_length=GRAPH_ID_MAX_CHARS, json_schema_extra=_GRAPH_TEXT,
                           description="The sink's input.")

    @field_validator("source_id", "source_name", "sink_id", "sink_name")
    @classmethod
    def _storable(cls, value: str, info) -> str:
        return refuse_unstorable(value, f"links.{info.field_name}")


class CreateGraphRequest(BaseModel):
    model_config = ConfigDict(**REQUEST, json_schema_extra={"examples": [
        {"name": "Summariser", "description": "Summarises a text.",
         "nodes": [{"id": "input", "block_id": "text-input", "input_default": {"name": "Text"}},
                   {"id": "summarise", "block_id": "llm-summarise"}],
         "links": [{"source_id": "input", "source_name": "result", "sink_id": "summarise", "sink_name": "text"}]}]})

    name: str = Field(min_length=1, max_length=GRAPH_NAME_MAX_CHARS, json_schema_extra=_GRAPH_TEXT)
    description: str = Field(default="", max_length=GRAPH_DESCRIPTION_MAX_CHARS, json_schema_extra=_GRAPH_TEXT)
    nodes: list[GraphNodeBody] = Field(default_factory=list, max_length=MAX_GRAPH_NODES)
    links: list[GraphLinkBody] = Field(default_factory=list, max_length=MAX_GRAPH_LINKS,
                                       description="Stored as given: validate_agent_graph says what is wrong.")

    @field_validator("name", "description")
    @classmethod
    def _storable(cls, value: str, info) -> str:
        return refuse_unstorable(value, info.field_name)


class UpdateGraphRequest(CreateGraphRequest):
    """The graph's new content, replacing the old, and the version it was made from."""

    model_config = ConfigDict(**REQUEST, json_schema_extra={"examples": [
        {"version": 1, "name": "Summariser", "nodes": [{"id": "input", "block_id": "text-input"}], "links": []}]})

    version: int = Field(ge=1, le=2**31 - 1, description="The version this content was made from: if the graph "
                                                         "has moved on since, the update is a 409.")


class GraphPage(BaseModel):
    graphs: list[GraphSummary]
    total: int
    limit: int
    offset: int
