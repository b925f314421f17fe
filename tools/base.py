"""What a tool is: a typed input model (its JSON schema is what the model sees), a description
and an async function that runs it."""

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from pydantic import BaseModel


@dataclass(frozen=True)
class ToolContext:
    session_id: str
    user_id: str
    turn_id: str
    tool_call_id: str


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
    run: Callable[[BaseModel, ToolContext], Awaitable[Any]]

    def openai_schema(self) -> dict[str, Any]:
        schema = self.input_model.model_json_schema()
        schema.pop("title", None)
        return {"type": "function", "function": {"name": self.name, "description": self.description, "parameters": schema}}
