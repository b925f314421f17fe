"""Turns one streamed chat completion into UI-stream parts and the round's final message.

Pure logic, no I/O: the LLM activity feeds it deltas and publishes what it returns. It owns
the ordering rules of the UI stream: reasoning closes before text or a tool input begins, text
closes before a tool input begins, and everything still open closes at the end.
"""

import json
import math
from dataclasses import dataclass, field
from typing import Any, Optional

from models import ui_stream
from models.turn import ToolCall, Usage


def reasoning_text(delta_extra: dict[str, Any]) -> str:
    """Reasoning from the three shapes providers send, in priority order.

    `reasoning` (string), `reasoning_content` (string), or `reasoning_details` (entries of type
    text or summary; encrypted entries carry nothing a person can read and are skipped).
    """
    for key in ("reasoning", "reasoning_content"):
        value = delta_extra.get(key)
        if isinstance(value, str) and value:
            return value
    pieces = []
    for entry in delta_extra.get("reasoning_details") or []:
        if not isinstance(entry, dict):
            continue
        kind = str(entry.get("type", "")).removeprefix("reasoning.")
        if kind == "text" and isinstance(entry.get("text"), str):
            pieces.append(entry["text"])
        elif kind == "summary" and isinstance(entry.get("summary"), str):
            pieces.append(entry["summary"])
    return "".join(pieces)


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


def usage_from_chunk(usage: Any) -> Usage:
    """Token counts and the provider-reported cost (OpenRouter's `usage.cost`, in USD)."""
    extra = getattr(usage, "model_extra", None) or {}
    details = getattr(usage, "prompt_tokens_details", None)
    details_extra = (getattr(details, "model_extra", None) or {}) if details is not None else {}
    cost = extra.get("cost")
    return Usage(
        prompt_tokens=usage.prompt_tokens or 0,
        completion_tokens=usage.completion_tokens or 0,
        cache_read_tokens=(getattr(details, "cached_tokens", None) or 0) if details is not None else 0,
        cache_write_tokens=int(details_extra.get("cache_write_tokens") or 0),
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


def parsed_arguments(arguments: str) -> Any:
    """The tool input as JSON when it parses; the raw text otherwise (the tool will refuse it)."""
    try:
        return json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return arguments
