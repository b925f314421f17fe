"""Finds the workspace files a conversation refers to: `workspace://<file id>` anywhere in it.

A reference may carry a MIME type after `#` (`workspace://<id>#image/png`), and may sit deep in
JSON: a tool's output is stored as JSON text whose strings can hold JSON text again (a command's
stdout that printed JSON), and a tool call's arguments are JSON text. Every string is searched as
it is, and every string that parses as JSON is searched again inside, so an escaped reference
(`workspace:\\/\\/...`, `\\u0077orkspace://...`) is found too.
"""

import json
import re
from typing import Any, Iterable

# The id is what `workspace.files` generates (32 lowercase hex digits), and nothing may follow it
# that would make it part of a longer token.
REFERENCE = re.compile(r"workspace://([0-9a-f]{32})(?![0-9A-Za-z_])(?:#[\w.+/-]*)?")
# Deeper than this is no conversation's shape; the bound keeps a crafted value from costing more.
MAX_DEPTH = 32


def _parsed_json(text: str) -> Any:
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{\"":
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None


def _collect(value: Any, depth: int, found: set[str]) -> None:
    if depth > MAX_DEPTH:
        return
    if isinstance(value, str):
        found.update(REFERENCE.findall(value))
        inner = _parsed_json(value)
        if inner is not None and inner != value:
            _collect(inner, depth + 1, found)
    elif isinstance(value, dict):
        for key, item in value.items():
            _collect(key, depth + 1, found)
            _collect(item, depth + 1, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(item, depth + 1, found)


def referenced_file_ids(values: Iterable[Any]) -> set[str]:
    """The file ids referred to anywhere in these values (strings, or JSON-shaped data)."""
    found: set[str] = set()
    for value in values:
        _collect(value, 0, found)
    return found
