"""API schemas of the admin diagnostics and operations: figures, lists and actions over every turn."""

from datetime import datetime
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from models.api import AdminUsage
from models.text import refuse_unstorable

# A session id as the API makes them (a lowercase UUID); anything else names no turn.
SESSION_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# One bulk request names at most this many sessions (the stops run a few at a time).
MAX_BULK_SESSIONS = 1000
REQUEST = ConfigDict(extra="forbid", strict=True)
SessionId = Annotated[str, StringConstraints(pattern=SESSION_ID_PATTERN)]


class TurnDiagnostics(BaseModel):
    """Every figure at one moment (`timestamp`); see the README's *Operations* for how each is read."""

    running_turns: int = Field(description="Turn workflows running now, sub-sessions included.")
    running_sub_sessions: int
    queued_follow_ups: int = Field(description="Messages waiting in the running turns' buffers, in all.")
    failed_1h: int
    failed_24h: int
    failure_rate_24h: float = Field(description="Failed turns over all turns that ended in the last 24 h (0 to 1).")
    completed_1h: int
    completed_24h: int
    throughput_per_hour: float = Field(description="Turns completed per hour, over the last 24 h.")
    long_running: int = Field(description="Running for longer than `long_running_after_seconds`.")
    long_running_24h: int
    long_running_after_seconds: float
    oldest_running_hours: Optional[float] = None
    stuck: Optional[int] = Field(description="Running with no stream event for longer than `stuck_after_seconds`; "
                                             "null when Redis did not answer.")
    stuck_after_seconds: float
    unanswered: int = Field(description="Running turns that did not answer their state query in time (no worker "
                                        "runs them, or their workflow task keeps failing).")
    subscriptions_with_pending_change: int
    subscriptions_checked: int
    partial: bool = Field(description="More turns or subscriptions run than one summary reads: the figures that need "
                                      "each one's state cover the first ones only.")
    timestamp: datetime


class TurnDetail(BaseModel):
    session_id: str
    user_id: str
    title: Optional[str]
    kind: str = Field(description="`turn` or `sub_session`.")
    turn_id: str = Field(description="The turn's workflow run id.")
    status: str = Field(description="Temporal's execution status: running, completed, failed, terminated, ...")
    turn_status: Optional[str] = Field(description="How the turn itself says it ended (CopilotTurnStatus).")
    started_at: datetime
    closed_at: Optional[datetime] = None
    round: Optional[int] = Field(default=None, description="The model round it is in; null when it did not answer.")
    buffer_length: Optional[int] = None
    last_event_at: Optional[datetime] = Field(default=None, description="Its stream's last event, when it has one.")
    error: Optional[str] = None


class TurnList(BaseModel):
    turns: list[TurnDetail]
    total: int
    limit: int
    offset: int


class StopTurnRequest(BaseModel):
    model_config = ConfigDict(**REQUEST, json_schema_extra={"examples": [
        {"session_id": "0b6f8a52-3d2e-4c1b-9a57-2f0d7c1e4b9a"}]})

    session_id: SessionId


class StopTurnsRequest(BaseModel):
    model_config = ConfigDict(**REQUEST, json_schema_extra={"examples": [
        {"session_ids": ["0b6f8a52-3d2e-4c1b-9a57-2f0d7c1e4b9a"]}, {"session_ids": []}]})

    session_ids: list[SessionId] = Field(max_length=MAX_BULK_SESSIONS)


class TerminateTurnRequest(BaseModel):
    model_config = ConfigDict(**REQUEST, json_schema_extra={"examples": [
        {"session_id": "0b6f8a52-3d2e-4c1b-9a57-2f0d7c1e4b9a", "reason": "model provider hung; turn ignores Stop"}]})

    session_id: SessionId
    reason: str = Field(min_length=1, max_length=500, json_schema_extra={"pattern": r"^[^\x00]*\S[^\x00]*$"})

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("reason is empty")
        return refuse_unstorable(value, "reason")


class ActionResponse(BaseModel):
    """What an action did: `stopped_count` of `requested_count` (the seed's `StopExecutionResponse`)."""

    success: bool
    stopped_count: int = 0
    requested_count: int = 0
    message: str
    outcomes: dict[str, str] = Field(default_factory=dict, description="Per session: stopped, not_running, "
                                                                       "stop_pending or error.")


class TerminateResponse(BaseModel):
    success: bool
    outcome: Literal["stopped", "terminated", "not_running"]
    message: str


class AuditEntry(BaseModel):
    id: int
    admin_id: str
    action: str
    target: Optional[str]
    reason: Optional[str]
    outcome: str
    details: dict[str, Any]
    created_at: datetime


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    total: int
    limit: int
    offset: int


class UserSessionOut(BaseModel):
    id: str
    title: Optional[str]
    parent_session_id: Optional[str]
    created_at: datetime
    updated_at: datetime


class UserLookup(BaseModel):
    user_id: str
    tier: str
    credits: int = Field(description="The credit balance.")
    usage: AdminUsage = Field(description="Raw microdollars used and the limit, per window.")
    sessions: list[UserSessionOut] = Field(description="The most recently active sessions.")
    session_count: int
    running_turns: list[TurnDetail]
