"""Turns one streamed chat completion into UI-stream parts and the round's final message.

Pure logic, no I/O: the LLM activity feeds it deltas and publishes what it returns. It owns
the ordering rules of the UI stream: reasoning closes before text or a tool input begins, text
closes before a tool input begins, and everything still open closes at the end.
"""

import math
from dataclasses import dataclass, field
from typing import Any, Optional

from models import ui_stream
from models.turn import ToolCall, Usage, parsed_arguments

# `reasoning_details` entry types a person can read, and the field that holds their text. An entry
# with no type is text; an encrypted entry (or a type we do not know) is never shown.
_READABLE_DETAILS = {None: "text", "text": "text", "summary": "summary"}


@dataclass(frozen=True)
class ReasoningDelta:
    text: str = ""
    # What was wrong with `reasoning_details` (type names only, never content), when something was.
    malformed: Optional[str] = None


def _detail_text(entry: Any) -> tuple[str, Optional[str]]:
    """One `reasoning_details` entry: its readable text, and what is wrong with it if it is malformed."""
    if not isinstance(entry, dict):
        return "", f"an entry is {type(entry).__name__}"
    kind = entry.get("type")
    if kind is not None and not isinstance(kind, str):
        return "", f"an entry's type is {type(kind).__name__}"
    field_name = _READABLE_DETAILS.get(kind.removeprefix("reasoning.") if kind else None)
    if field_name is None:
        return "", None  # encrypted, or a type that may carry text not meant for people
    value = entry.get(field_name)
    if value is not None and not isinstance(value, str):
        return "", f"an entry's {field_name} is {type(value).__name__}"
    return value or "", None


def reasoning_delta(delta_extra: dict[str, Any]) -> ReasoningDelta:
    """Reasoning from the three shapes providers send, in priority order.

    `reasoning` (string), `reasoning_content` (string), or `reasoning_details` (a list of entries
    of type text or summary). A malformed `reasoning_details` never fails the round: what can be
    read is kept, the rest is reported in `malformed` for the caller to log once.
    """
    for key in ("reasoning", "reasoning_content"):
        value = delta_extra.get(key)
        if isinstance(value, str) and value:
            return ReasoningDelta(value)
    details = delta_extra.get("reasoning_details")
    if details is None:
        return ReasoningDelta()
    if not isinstance(details, list):
        return ReasoningDelta(malformed=f"reasoning_details is {type(details).__name__}, not a list")
    pieces, problems = [], []
    for entry in details:
        text, problem = _detail_text(entry)
        pieces.append(text)
        if problem:
            problems.append(problem)
    return ReasoningDelta("".join(pieces), "; ".join(sorted(set(problems))) or None)


def reasoning_text(delta_extra: dict[str, Any]) -> str:
    return reasoning_delta(delta_extra).text


# No single model round costs this much (USD): a figure above it is a provider fault, not spend.
MAX_ROUND_COST_USD = 1_000.0


def cost_microdollars(cost: Any) -> Optional[int]:
    """A reported cost, or None when it is missing or cannot be one (negative, not finite,
    absurdly large): such a round is logged as having no cost and never lowers a user's spend."""
    if isinstance(cost, bool) or not isinstance(cost, (int, float)):
        return None
    cost = float(cost)
    if not math.isfinite(cost) or cost < 0 or cost > MAX_ROUND_COST_USD:
        return None
    return round(cost * 1_000_000)


def _token_count(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def cache_write_tokens(usage: Any) -> int:
    """Prompt tokens written to the provider's cache, from the first place that reports them: the
    typed `prompt_tokens_details.cache_write_tokens` of the pinned `openai` client, then
    `cache_write_tokens`, then Anthropic's own `cache_creation_input_tokens` (each in the extra
    fields of the details or of the usage)."""
    details = getattr(usage, "prompt_tokens_details", None)
    typed = _token_count(getattr(details, "cache_write_tokens", None))
    if typed is not None:
        return typed
    extras = [getattr(details, "model_extra", None) or {}, getattr(usage, "model_extra", None) or {}]
    for name in ("cache_write_tokens", "cache_creation_input_tokens"):
        for extra in extras:
            found = _token_count(extra.get(name))
            if found is not None:
                return found
    return 0


def usage_from_chunk(usage: Any) -> Usage:
    """Token counts and the provider-reported cost (OpenRouter's `usage.cost`, in USD)."""
    extra = getattr(usage, "model_extra", None) or {}
    details = getattr(usage, "prompt_tokens_details", None)
    cost = extra.get("cost")
    return Usage(
        prompt_tokens=usage.prompt_tokens or 0,
        completion_tokens=usage.completion_tokens or 0,
        cache_read_tokens=(getattr(details, "cached_tokens", None) or 0) if details is not None else 0,
        cache_write_tokens=cache_write_tokens(usage),
        cost_microdollars=cost_microdollars(cost),
    )


@dataclass
class _PartialCall:
    id: Optional[str] = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    started: bool = False


class RoundAssembler:
    def __init__(self, part_prefix: str):
        self.prefix = part_prefix
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, _PartialCall] = {}
        self._segment = 0
        self._open_text: Optional[str] = None
        self._open_reasoning: Optional[str] = None

    def _new_id(self, kind: str) -> str:
        self._segment += 1
        return f"{self.prefix}-{kind}{self._segment}"

    def _close_text(self) -> list[dict]:
        if self._open_text is None:
            return []
        part, self._open_text = ui_stream.text_end(self._open_text), None
        return [part]

    def _close_reasoning(self) -> list[dict]:
        if self._open_reasoning is None:
            return []
        part, self._open_reasoning = ui_stream.reasoning_end(self._open_reasoning), None
        return [part]

    def on_reasoning(self, delta: str) -> list[dict]:
        parts = self._close_text()
        if self._open_reasoning is None:
            self._open_reasoning = self._new_id("reasoning")
            parts.append(ui_stream.reasoning_start(self._open_reasoning))
        self.reasoning.append(delta)
        parts.append(ui_stream.reasoning_delta(self._open_reasoning, delta))
        return parts

    def on_text(self, delta: str) -> list[dict]:
        parts = self._close_reasoning()
        if self._open_text is None:
            self._open_text = self._new_id("text")
            parts.append(ui_stream.text_start(self._open_text))
        self.text.append(delta)
        parts.append(ui_stream.text_delta(self._open_text, delta))
        return parts

    def on_tool_call(self, index: int, call_id: Optional[str], name: Optional[str], arguments: Optional[str]) -> list[dict]:
        parts = self._close_reasoning() + self._close_text()
        call = self.calls.setdefault(index, _PartialCall())
        call.id = call.id or call_id
        call.name = call.name or (name or "")
        if arguments:
            call.arguments.append(arguments)
        if not call.started and call.name:
            call.id = call.id or f"call_{self.prefix}_{index}"
            call.started = True
            parts.append(ui_stream.tool_input_start(call.id, call.name))
            if call.arguments:
                parts.append(ui_stream.tool_input_delta(call.id, "".join(call.arguments)))
        elif call.started and arguments:
            parts.append(ui_stream.tool_input_delta(call.id, arguments))
        return parts

    def finish(self) -> list[dict]:
        """Closes what is open and announces every complete tool input."""
        parts = self._close_reasoning() + self._close_text()
        for call in self.tool_calls():
            parts.append(ui_stream.tool_input_available(call.id, call.name, parsed_arguments(call.arguments)))
        return parts

    def close_open(self) -> list[dict]:
        """What to publish when the round ends early (cancelled or failed)."""
        return self._close_reasoning() + self._close_text()

    def tool_calls(self) -> list[ToolCall]:
        return [
            ToolCall(id=c.id or f"call_{self.prefix}_{i}", name=c.name, arguments="".join(c.arguments) or "{}")
            for i, c in sorted(self.calls.items())
            if c.name
        ]
