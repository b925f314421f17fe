"""Inputs, outputs and state of the turn workflow and its activities (all pydantic, so the
Temporal pydantic data converter carries them without custom code)."""

import json
from datetime import datetime
from typing import Any, Literal, Optional

from pydantic import BaseModel, Field

from models import keys, ui_stream
from models.tool_filter import ToolFilter

# The system row a stopped turn ends with, and the error its unfinished tool calls get.
STOP_MARKER = "stopped by user"

# How long a caller waits for a stopped turn to close before answering "stop pending".
STOP_WAIT_SECONDS = 15.0

TurnStatus = Literal["running", "awaiting_approval", "completed", "failed", "stopped"]
# A turn that has not ended: working, or waiting for a person to approve a tool call.
ACTIVE_STATUSES = ("running", "awaiting_approval")
ChatMode = Literal["fast", "extended_thinking"]
# `standard` is the mode's model, `advanced` the configured advanced one.
ModelChoice = Literal["standard", "advanced"]


class ToolCall(BaseModel):
    id: str
    name: str
    arguments: str = "{}"  # the raw JSON text the model produced


class ModelMessage(BaseModel):
    """One message in the OpenAI chat format, as the model sees it."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: Optional[str] = None

    def to_openai(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        if self.tool_call_id:
            message["tool_call_id"] = self.tool_call_id
        return message


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    # USD x 1,000,000 as the provider reported it; None when it reported no cost.
    cost_microdollars: Optional[int] = None

    def __add__(self, other: "Usage") -> "Usage":
        costs = [c for c in (self.cost_microdollars, other.cost_microdollars) if c is not None]
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cost_microdollars=sum(costs) if costs else None,
        )


class PageContext(BaseModel):
    """The page the user is on when sending (the front end's `context`)."""

    url: str = ""
    content: str = ""


class AttachedFile(BaseModel):
    """A workspace file attached to a message: its text when it is small text, else a reference."""

    file_id: str
    name: str
    content_type: str
    size_bytes: int
    text: Optional[str] = None


class MessageContext(BaseModel):
    """What the model is given with a message besides its text."""

    page: Optional[PageContext] = None
    files: list[AttachedFile] = Field(default_factory=list)


class IncomingMessage(BaseModel):
    """A user message handed to a turn (the first one starts it; later ones queue)."""

    message_id: str
    content: str
    context: Optional[MessageContext] = None
    # False for a nudge the front end sends on the user's behalf: the model reads it as the
    # user's, a transcript does not show it as something the user typed.
    is_user_message: bool = True

    def row(self) -> "NewMessageRow":
        return NewMessageRow(key=keys.user_row(self.message_id), role="user", content=self.content,
                             context=self.context, is_user_message=self.is_user_message)


class SubmitResult(BaseModel):
    turn_id: str
    message_id: str
    queued: bool
    buffer_length: int
    max_buffer_length: int


class ModelCallPolicy(BaseModel):
    """Timeouts and retries of a model round, chosen by the caller's settings at turn start."""

    heartbeat_timeout_seconds: float = 20.0
    round_timeout_seconds: float = 600.0
    max_attempts: int = 4
    initial_retry_seconds: float = 1.0
    max_retry_interval_seconds: float = 20.0


class TurnInput(BaseModel):
    session_id: str
    user_id: str
    mode: ChatMode = "fast"
    model: ModelChoice = "standard"
    # Tools that would change something outside the session's workspace simulate instead.
    dry_run: bool = False
    tool_filter: ToolFilter = Field(default_factory=ToolFilter)
    # The tools this turn may use, resolved from the filter before the turn starts, so what the
    # workflow decides never depends on the registry of the worker that replays it.
    allowed_tools: Optional[list[str]] = None
    kind: Literal["turn", "sub_session"] = "turn"
    model_policy: ModelCallPolicy = Field(default_factory=ModelCallPolicy)
    tool_timeout_seconds: float = 300.0
    tool_heartbeat_timeout_seconds: float = 30.0
    max_rounds: int = 10
    # Tool calls one model round may run; the rest get a refusal. None (runs started before
    # the limit existed): all of them.
    max_tool_calls_per_round: Optional[int] = None
    # 0 for a session's own turn, n for a sub-session n levels below it.
    sub_session_depth: int = 0
    max_buffer_length: int = 10
    max_message_chars: int = 32_000
    # Tools whose calls wait for a person's approval before they run, and how long they wait
    # before counting as declined.
    approval_required_tools: list[str] = Field(default_factory=list)
    approval_timeout_seconds: float = 24 * 3600
    # Sub-sessions one turn may start; the rest are refused. None (runs started before the
    # limit existed): no limit.
    max_sub_sessions_per_turn: Optional[int] = None
    # Messages carried into this run by continue-as-new (auto-continue); they start the turn.
    carried_messages: list[IncomingMessage] = Field(default_factory=list)
    # The agent graph the session is the builder's chat for: its rounds see that graph and its tools
    # may change only it (None: not a builder session).
    builder_graph_id: Optional[str] = None


class ApprovalRequest(BaseModel):
    """A tool call waiting for a person's yes or no."""

    approval_id: str
    tool_call_id: str
    tool_name: str
    input: Any = None


class ToolDecision(BaseModel):
    approval_id: str
    approved: bool
    reason: Optional[str] = None


class ApprovalAnswer(BaseModel):
    approval_id: str
    status: Literal["approved", "denied"]
    already: bool = Field(default=False, description="The same decision had been given before: nothing changed.")


def parsed_arguments(arguments: str) -> Any:
    """The tool input as JSON when it parses; the raw text otherwise (the tool will refuse it)."""
    try:
        return json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return arguments


def approval_id_for(tool_call_id: str) -> str:
    return f"approval_{tool_call_id}"


class TurnState(BaseModel):
    turn_id: str
    status: TurnStatus
    round: int
    buffer_length: int
    max_buffer_length: int
    pending: list[IncomingMessage]
    awaiting_approval: list[ApprovalRequest] = Field(default_factory=list)


class TurnResult(BaseModel):
    turn_id: str
    status: TurnStatus
    text: str
    rounds: int
    usage: Usage
    tool_calls: list[ToolCall] = Field(default_factory=list)
    error: Optional[str] = None


class ToolCallEntry(BaseModel):
    """One tool call of a turn with its result, as request/response callers read it."""

    tool_call_id: str
    tool_name: str
    input: Any = None
    output: Any = None
    success: Optional[bool] = None  # None: no result yet


class TokenUsage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class TurnOutcome(BaseModel):
    """A turn as a request/response caller sees it (bots, graph blocks, sub-sessions)."""

    status: Literal["completed", "running", "error", "cancelled", "queued"]
    turn_id: Optional[str] = None
    response: Optional[str] = None
    tool_calls: list[ToolCallEntry] = Field(default_factory=list)
    usage: Optional[Usage] = None
    token_usage: Optional[TokenUsage] = None
    error: Optional[str] = None
    queued: bool = False
    pending_buffer_length: int = 0


class BeginTurnRequest(BaseModel):
    session_id: str
    user_id: str
    turn_id: str
    stream_key: str
    messages: list[IncomingMessage]


class RoundRequest(BaseModel):
    session_id: str
    turn_id: str
    stream_key: str
    round_index: int
    mode: ChatMode
    allowed_tools: list[str]
    model: ModelChoice = "standard"
    # The conversation itself is read from Postgres by the activity (conversation/context.py):
    # it never enters workflow history.
    # The session's owner (whose graph a builder session's round reads) and its builder graph.
    user_id: str = ""
    builder_graph_id: Optional[str] = None


class RoundResult(BaseModel):
    text: str
    reasoning: str
    tool_calls: list[ToolCall]
    usage: Usage
    model: str
    finish_reason: Optional[str] = None


class ToolRequest(BaseModel):
    session_id: str
    user_id: str
    turn_id: str
    stream_key: str
    call: ToolCall
    allowed_tools: list[str]
    # The turn's tool cap, and when this call's wait ends (set by the workflow when it schedules
    # the call; retries share it). Unset: the worker's `tool_timeout_seconds` from now.
    timeout_seconds: Optional[float] = None
    deadline: Optional[datetime] = None
    dry_run: bool = False
    # The graph a builder-bound session's tools are confined to (None: no builder session).
    builder_graph_id: Optional[str] = None


class ToolResult(BaseModel):
    tool_call_id: str
    name: str
    output: Any = None
    error: Optional[str] = None
    # False when the activity could not put the result on the stream (the workflow then does).
    published: bool = True

    def model_content(self) -> str:
        """The text the model gets back as the tool message."""
        if self.error is not None:
            return json.dumps({"error": self.error})
        return self.output if isinstance(self.output, str) else json.dumps(self.output, default=str)

    def stream_part(self) -> dict:
        """The UI-stream part that shows this result."""
        if self.error is not None:
            return ui_stream.tool_output_error(self.tool_call_id, self.error)
        return ui_stream.tool_output_available(self.tool_call_id, self.output)


def timeout_message(tool_name: str, cap: float) -> str:
    """What the model reads when a tool call ran into the tool cap."""
    return (f"'{tool_name}' did not finish within {cap:.0f}s. For long work, delegate it with "
            "run_sub_session and poll get_sub_session_result.")


class NewMessageRow(BaseModel):
    """A chat message to persist; `key` makes the write idempotent within the session."""

    key: str
    role: Literal["user", "assistant", "tool", "reasoning", "system"]
    content: str = ""
    tool_calls: Optional[list[ToolCall]] = None
    tool_call_id: Optional[str] = None
    context: Optional[MessageContext] = None  # user rows only
    is_user_message: bool = True


class RecordMessagesRequest(BaseModel):
    session_id: str
    turn_id: str
    rows: list[NewMessageRow]


class RecordUsageRequest(BaseModel):
    user_id: str
    session_id: str
    turn_id: str
    round_index: int
    model: str
    usage: Usage


class SpendCheckRequest(BaseModel):
    user_id: str


class SpendCheck(BaseModel):
    """Whether the user may spend more now: set when a window is used up."""
    exhausted_window: Optional[Literal["daily", "weekly"]] = None
    resets_at: Optional[datetime] = None


class OpenStreamRequest(BaseModel):
    session_id: str
    turn_id: str
    stream_key: str


class PublishRequest(BaseModel):
    stream_key: str
    # Publishing the same key twice (a retried activity) writes the parts once.
    dedup_key: str
    parts: list[dict[str, Any]]
    end_stream: bool = False
    # The end marker says whether queued follow-ups continue into a next turn (readers follow).
    continues: bool = False


class PrepareSubSessionRequest(BaseModel):
    parent_session_id: str
    user_id: str
    turn_id: str
    call: ToolCall
    parent_allowed_tools: list[str]
    parent_depth: int = 0
    dry_run: bool = False  # the parent's: a dry run's sub-sessions are dry runs too
    approval_required_tools: list[str] = Field(default_factory=list)  # the parent's: the sub's too
    builder_graph_id: Optional[str] = None  # the parent's: a builder session's subs work on its graph only


class PreparedSubSession(BaseModel):
    error: Optional[str] = None
    sub_session_id: str = ""
    child_input: Optional["TurnInput"] = None
    message: Optional[IncomingMessage] = None
    wait_seconds: float = 0
    title: str = ""


class QueueInSessionRequest(BaseModel):
    session_id: str
    user_id: str
    message: IncomingMessage
    title: str
    # The parent turn's tools: the sub never gets wider ones (None: the sub's own filter).
    parent_allowed_tools: Optional[list[str]] = None
    depth: int = 1  # the sub's depth below the root session
    builder_graph_id: Optional[str] = None  # the parent's, which the sub's turn is confined to


class StopRequest(BaseModel):
    session_id: str
    turn_id: str
    stream_key: str
    round_index: int
    # Calls of the stopped round without a result (they get "stopped by user"), and the results
    # of those that had finished (kept as they are).
    open_tool_calls: list[ToolCall]
    finished_tool_results: list[ToolResult] = Field(default_factory=list)
    continues: bool = False
    # Stopped before the opening messages were stored (and the stream opened): stored here.
    unrecorded_messages: list[IncomingMessage] = Field(default_factory=list)
