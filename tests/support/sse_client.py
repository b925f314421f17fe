"""Reads an SSE response into events, the way a browser's EventSource (and the AI SDK) would."""

import json
from dataclasses import dataclass
from typing import Any, AsyncIterator, Optional

import httpx


@dataclass
class Event:
    id: Optional[str]
    data: str

    @property
    def part(self) -> Optional[dict[str, Any]]:
        return None if self.data == "[DONE]" else json.loads(self.data)


async def iter_events(response: httpx.Response) -> AsyncIterator[Event]:
    event_id, data = None, []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield Event(event_id, "\n".join(data))
            event_id, data = None, []
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data.append(line[6:])


async def read_events(response: httpx.Response, limit: Optional[int] = None) -> list[Event]:
    """Events until `[DONE]` (or `limit` of them)."""
    events: list[Event] = []
    async for event in iter_events(response):
        events.append(event)
        if event.data == "[DONE]" or (limit is not None and len(events) >= limit):
            break
    return events


def parts(events: list[Event]) -> list[dict[str, Any]]:
    return [e.part for e in events if e.part is not None]


def part_types(events: list[Event]) -> list[str]:
    return [p["type"] for p in parts(events)]


def assembled_text(events: list[Event], kind: str = "text") -> str:
    return "".join(p["delta"] for p in parts(events) if p["type"] == f"{kind}-delta")


def assert_well_formed(events: list[Event]) -> None:
    """The UI-stream rules: parts open and close in order, nothing is left open, it ends with finish."""
    open_parts: dict[str, str] = {}
    for part in parts(events):
        kind = part["type"]
        if kind in ("text-start", "reasoning-start"):
            assert not open_parts, f"{kind} began while {open_parts} was open"
            open_parts[part["id"]] = kind
        elif kind in ("text-delta", "reasoning-delta"):
            assert part["id"] in open_parts, f"{kind} for a part that is not open"
        elif kind in ("text-end", "reasoning-end"):
            assert open_parts.pop(part["id"], None), f"{kind} for a part that is not open"
        elif kind == "tool-input-start":
            assert not open_parts, f"tool input began while {open_parts} was open"
    assert not open_parts, f"left open: {open_parts}"
    assert events[-1].data == "[DONE]"
    assert parts(events)[-1]["type"] == "finish"
