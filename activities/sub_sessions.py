"""The database side of starting a sub-session: create (or check and resume) the sub's session,
with a tool filter never wider than the parent's."""

import json
import uuid

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from conversation.sessions import (
    APPROVAL_KEY,
    TOOL_FILTER_KEY,
    create_session,
    owned_session,
    session_approval_tools,
    session_tool_filter,
    title_from_message,
)
from models.tool_filter import ToolFilter
from models.turn import (
    IncomingMessage,
    PreparedSubSession,
    PrepareSubSessionRequest,
    QueueInSessionRequest,
    SubmitResult,
)
from settings import Settings
from tools.registry import ToolCatalog
from tools.sub_sessions import RunSubSessionInput, clamp_wait
from workflows import turn_client


class SubSessionActivities:
    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession], temporal: Client,
                 tools: ToolCatalog):
        self.settings = settings
        self.sessions = sessions
        self.temporal = temporal
        self.tools = tools

    @activity.defn
    async def prepare_sub_session(self, request: PrepareSubSessionRequest) -> PreparedSubSession:
        try:
            arguments = RunSubSessionInput.model_validate(json.loads(request.call.arguments or "{}"))
        except (json.JSONDecodeError, ValidationError) as problem:
            return PreparedSubSession(error=f"invalid_arguments: {str(problem)[:2000]}")
        depth = request.parent_depth + 1
        if depth > self.settings.max_sub_session_depth:  # refused before anything is created
            return PreparedSubSession(error=f"too_deep: sub-sessions may nest {self.settings.max_sub_session_depth} "
                                            "levels deep; do this part here instead.")
        running = await turn_client.running_turns(self.temporal, request.user_id,
                                                  excluding_session=arguments.sub_autopilot_session_id)
        if running >= self.settings.max_running_turns_per_user:  # this turn counts among them
            return PreparedSubSession(error=f"too_many_running_turns: {running} of the user's turns are running (at "
                                            f"most {self.settings.max_running_turns_per_user} at once); do this part "
                                            "here, or wait for a sub-session to finish.")
        prompt = arguments.prompt
        if arguments.system_context:
            prompt = f"Context from the parent session:\n{arguments.system_context}\n\nTask:\n{arguments.prompt}"
        async with self.sessions() as db:
            if arguments.sub_autopilot_session_id:
                sub = await owned_session(db, request.user_id, arguments.sub_autopilot_session_id)
                if sub is None or sub.id == request.parent_session_id:
                    return PreparedSubSession(error="not_found: No such sub-session.")
                tool_filter = session_tool_filter(sub).narrowed_to(request.parent_allowed_tools)
            else:
                tool_filter = ToolFilter().narrowed_to(request.parent_allowed_tools)
                sub = await create_session(
                    db, request.user_id, f"Sub-session: {title_from_message(arguments.prompt)}",
                    {TOOL_FILTER_KEY: tool_filter.model_dump(), "sub_session_of_turn": request.turn_id,
                     APPROVAL_KEY: request.approval_required_tools},
                    parent_session_id=request.parent_session_id, dry_run=request.dry_run,
                    builder_graph_id=request.builder_graph_id,
                )
        # Derived from the tool call, so a retried activity hands the sub the same message.
        message_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{request.turn_id}/{request.call.id}"))
        return PreparedSubSession(
            sub_session_id=sub.id, title=sub.title or "Sub-session",
            child_input=turn_client.turn_input(self.settings, sub.id, request.user_id, self.tools, tool_filter,
                                               "sub_session", depth, dry_run=sub.dry_run or request.dry_run,
                                               approval_tools=[*session_approval_tools(sub),
                                                               *request.approval_required_tools],

                                               # a builder session's sub works on its graph, whatever it was bound to
                                               builder_graph_id=request.builder_graph_id or sub.builder_graph_id),
            message=IncomingMessage(message_id=message_id, content=prompt),
            wait_seconds=clamp_wait(arguments.wait_for_result, self.settings.tool_timeout_seconds),
        )

    @activity.defn
    async def queue_in_session(self, request: QueueInSessionRequest) -> SubmitResult:
        """Hands the prompt to a sub that is already busy: it waits in that turn's buffer (or, if
        that turn has just ended, starts the sub's next turn, with tools never wider than the parent's)."""
        async with self.sessions() as db:
            sub = await owned_session(db, request.user_id, request.session_id)
        tool_filter = session_tool_filter(sub) if sub else ToolFilter()
        if request.parent_allowed_tools is not None:
            tool_filter = tool_filter.narrowed_to(request.parent_allowed_tools)
        try:
            return await turn_client.submit_message(
                self.temporal, self.settings,
                turn_client.turn_input(self.settings, request.session_id, request.user_id, self.tools, tool_filter,
                                       "sub_session", request.depth, dry_run=bool(sub and sub.dry_run),
                                       approval_tools=session_approval_tools(sub) if sub else (),

                                       builder_graph_id=request.builder_graph_id or (sub.builder_graph_id if sub
                                                                                     else None)),
                request.message, request.title)
        except turn_client.MessageRefused as refusal:
            if refusal.closing:
                raise  # retried: the sub's turn is closing, the next attempt starts its next turn
            code = "buffer_full" if refusal.buffer_full else "invalid_message"
            raise ApplicationError(f"{code}: the sub-session refused the prompt ({refusal.message}).",
                                   type="ToolRefusal", non_retryable=True) from None

