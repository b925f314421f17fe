"""What a tool is: a typed input model (its JSON schema is what the model sees), a description
and an async function that runs it; optionally a prerequisite tool and a credit cost."""

from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from settings import Settings
from workspace.storage import WorkspaceStorage


@dataclass(frozen=True)
class ToolServices:
    """What tools may use, built once per worker."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    storage: WorkspaceStorage
    temporal: Optional[Client] = None


@dataclass(frozen=True)
class ToolContext:
    session_id: str
    user_id: str
    turn_id: str
    tool_call_id: str
    services: ToolServices
    allowed_tools: tuple[str, ...] = ()
    # Seconds this call may still take before it hits the tool cap (waits must end before it).
    budget_seconds: float = 300.0


class ToolError(Exception):
    """A refusal the model should read: becomes a tool result with this code and message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_model: type[BaseModel]
    run: Optional[Callable[[Any, ToolContext], Awaitable[Any]]]
    # The tool refuses until this tool has been called earlier in the session.
    prerequisite: Optional[str] = None
    credit_cost: int = 0
    # Runs in the turn workflow itself (it starts a child workflow), not in the tool activity.
    runs_in_workflow: bool = False

    def openai_schema(self) -> dict[str, Any]:
        schema = self.input_model.model_json_schema()
        schema.pop("title", None)
        return {"type": "function", "function": {"name": self.name, "description": self.description, "parameters": schema}}
