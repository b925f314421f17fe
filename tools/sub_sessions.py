"""Sub-sessions: delegate work to an ordinary session of the same user, run as its own turn
workflow (a child of the parent's turn that outlives it)."""

from typing import Optional

from pydantic import BaseModel, Field

from conversation.sessions import owned_session, session_progress
from models.turn import STOP_WAIT_SECONDS
from tools.base import Tool, ToolContext, ToolError

MAX_WAIT_SECONDS = 300
# A wait on a sub ends this long (a fifth of a small budget) before the tool cap, so a long sub
# answers `running` with its id instead of the call running into `tool_timeout`.
WAIT_MARGIN_SECONDS = 10.0
PROGRESS_MESSAGES = 5
PROGRESS_CHARS = 400


def clamp_wait(seconds: float, budget: Optional[float] = None) -> float:
    """The wait asked for, within 0..300 s and, given the call's budget, ending before the cap."""
    limit = float(MAX_WAIT_SECONDS)
    if budget is not None:
        limit = min(limit, budget - min(WAIT_MARGIN_SECONDS, budget / 5))
    return max(0.0, min(float(seconds), limit))


def sub_link(sub_session_id: str) -> str:
    return f"/copilot?sessionId={sub_session_id}"


class RunSubSessionInput(BaseModel):
    prompt: str = Field(min_length=1, max_length=32_000, description="What the sub-session should do.")
    system_context: Optional[str] = Field(default=None, max_length=8_000, description="Background it should know.")
    sub_autopilot_session_id: Optional[str] = Field(default=None, description="Resume this sub-session instead.")
    wait_for_result: float = Field(default=60, description="Seconds to wait for the answer (0-300).")


class GetSubSessionResultInput(BaseModel):
    sub_session_id: str
    wait_if_running: float = Field(default=60, description="Seconds to wait if it is still running (0-300).")
    cancel: bool = Field(default=False, description="Stop it (takes precedence over waiting).")
    include_progress: bool = Field(default=False, description="Add the message count and the last 5 messages.")


async def get_sub_session_result(arguments: GetSubSessionResultInput, context: ToolContext) -> dict:
    services = context.services
    control = services.sub_sessions
    if control is None:
        raise ToolError("unavailable", "Sub-sessions are not available on this worker.")
    async with services.sessions() as db:
        sub = await owned_session(db, context.user_id, arguments.sub_session_id)
    if sub is None or sub.id == context.session_id:  # its own session is no sub: same answer as missing
        raise ToolError("not_found", "No such sub-session.")
    outcome = None
    if arguments.cancel:
        stopped = await control.stop(sub.id, clamp_wait(STOP_WAIT_SECONDS, context.budget_seconds))
        if stopped is None:
            outcome = {"status": "running", "cancel_requested": True}
        elif stopped:
            outcome = {"status": "cancelled"}
    if outcome is None:  # waiting, or a cancel that found nothing running: how the sub really ended
        wait = 0.0 if arguments.cancel else clamp_wait(arguments.wait_if_running, context.budget_seconds)
        result = await control.outcome(sub.id, wait)
        outcome = result.model_dump(exclude_none=True, exclude={"queued", "pending_buffer_length", "usage"})
    outcome.update(sub_autopilot_session_id=sub.id, link=sub_link(sub.id))
    if arguments.include_progress:
        async with services.sessions() as db:
            outcome["progress"] = await session_progress(db, sub.id, PROGRESS_MESSAGES, PROGRESS_CHARS)
    return outcome


RUN = Tool(
    "run_sub_session",
    "Delegates a task to a sub-session (its own chat, with at most your tools) and waits up to "
    "wait_for_result seconds. Returns status completed (with response), running (poll with "
    "get_sub_session_result), queued, error or cancelled, and the sub-session id.",
    # No `run`: the turn workflow itself starts the sub's turn, as a child workflow.
    RunSubSessionInput, run=None,
)
GET_RESULT = Tool(
    "get_sub_session_result",
    "Checks a sub-session: waits up to wait_if_running seconds for its answer, or cancels it, and can "
    "include its recent progress.",
    GetSubSessionResultInput, get_sub_session_result,
)
