"""What a tool is: a typed input model (its JSON schema is what the model sees), a description
and an async function that runs it; optionally a prerequisite tool and a credit cost."""

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, Protocol, Union

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.turn import TurnOutcome
from settings import Settings
from workspace.storage import WorkspaceStorage

if TYPE_CHECKING:
    from agent_graphs.store import GraphStore


class SubSessionControl(Protocol):
    """The turn machinery the sub-session tools need, without the tools knowing Temporal:
    implemented beside the Temporal client (`workflows.turn_client.TemporalSubSessions`) and
    handed to the tools by `worker.py`."""

    async def stop(self, session_id: str, timeout_seconds: float) -> Optional[bool]:
        """Stops the session's turn: True once it has closed, False when nothing ran, None when
        it had not closed within the timeout (the stop stays requested)."""

    async def outcome(self, session_id: str, wait_seconds: float) -> TurnOutcome:
        """Waits up to `wait_seconds` for the session's turn, then how its last turn ended."""


@dataclass(frozen=True)
class ToolServices:
    """What tools may use, built once per worker."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    storage: WorkspaceStorage
    sub_sessions: Optional[SubSessionControl] = None
    graphs: Optional["GraphStore"] = None  # agent graphs (the agent-building tools)


@dataclass(frozen=True)
class ToolContext:
    session_id: str
    user_id: str
    turn_id: str
    tool_call_id: str
    services: ToolServices
    # Seconds this call may still take before it hits the tool cap (waits must end before it).
    budget_seconds: float = 300.0
    # The session is a dry run: nothing may change outside its workspace.
    dry_run: bool = False
    # The agent graph a builder-bound session works on: the only graph its tools may touch.
    builder_graph_id: Optional[str] = None


class ToolError(Exception):
    """A refusal the model should read: becomes a tool result with this code and message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Prerequisite:
    """What a tool needs to have happened earlier in the session before it runs."""

    tool: str
    # True: an earlier call of `tool` that completed successfully (a call of the same round, or one
    # that failed, does not count). False: any call of `tool` in an earlier assistant message,
    # whatever its result.
    must_succeed: bool = True
    # Builder-bound sessions pass without it (their prompt already gives what `tool` gives).
    waived_for_builder_sessions: bool = False
    # What the model reads when refused ("{tool_name}": the refusing tool); None: "Call X before Y."
    refusal: Optional[str] = None

    def refusal_for(self, tool_name: str) -> str:
        if self.refusal is None:
            return f"Call '{self.tool}' before '{tool_name}'."
        return self.refusal.format(tool_name=tool_name)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_model: type[BaseModel]
    run: Optional[Callable[[Any, ToolContext], Awaitable[Any]]]
    # The tool refuses until this has happened earlier in the session (a tool's name: that tool
    # completed successfully).
    prerequisite: Union[str, Prerequisite, None] = None
    credit_cost: int = 0
    # The tool changes something outside the session's workspace (another resource, another
    # service): in a dry-run session it is not run, and the model is told what it would have done.
    effects_outside_workspace: bool = False
    # Why the tool cannot run on this worker (None: it can). A worker leaves such a tool out of
    # what the model is offered, and logs the reason once at start-up.
    unavailable_reason: Optional[Callable[[Settings], Optional[str]]] = None

    @property
    def requirement(self) -> Optional[Prerequisite]:
        if isinstance(self.prerequisite, str):
            return Prerequisite(self.prerequisite)
        return self.prerequisite

    @cached_property
    def openai_schema(self) -> dict[str, Any]:
        """The schema the model is offered, built once: pydantic's JSON-schema generation took
        about 1.8 ms of worker CPU per model round when it ran every round. Shared: read it only."""
        schema = self.input_model.model_json_schema()
        schema.pop("title", None)
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": schema}}
