"""What PostgreSQL can store as text: the one place stored strings are made fit for it.

PostgreSQL refuses the NUL character in `text` and `jsonb` ("invalid byte sequence for encoding
UTF8: 0x00"), and Python strings may hold lone surrogates that are no UTF-8 at all. Text that a
person typed with such characters is refused at the API with a 422 naming the field (see
`refuse_unstorable`); text that a model, a tool or a provider produced is cleaned here, so it
can never make a write fail for good and hold a turn in its retries.
"""

from typing import Any

REPLACEMENT = "\ufffd"
# Text that PostgreSQL can store holds no NUL: request validators refuse it, and this pattern says
# so in the API's spec.
NO_NUL = r"^[^\x00]*$"


def unstorable(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def storable(text: str) -> str:
    """The text with NUL and lone surrogates replaced by U+FFFD."""
    if not unstorable(text):
        return text
    text = text.replace("\x00", REPLACEMENT)
    # Lone surrogates become U+FFFD too (the codec would write "?", which reads as real text).
    return "".join(REPLACEMENT if "\ud800" <= ch <= "\udfff" else ch for ch in text)


def storable_json(value: Any) -> Any:
    """A JSON value whose every string (keys too) is storable."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(k)): storable_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable_json(v) for v in value]
    return value


def refuse_unstorable(value: Any, field: str) -> Any:
    """For request validators: a string (or any string inside JSON) with NUL or a lone
    surrogate is refused, naming the field."""
    if isinstance(value, str) and unstorable(value):
        raise ValueError(f"{field} contains a NUL character or invalid Unicode, which cannot be stored")
    if isinstance(value, dict):
        for key, item in value.items():
            refuse_unstorable(key, f"{field} key")
            refuse_unstorable(item, field)
    if isinstance(value, list):
        for item in value:
            refuse_unstorable(item, field)
    return value


def json_depth(value: Any) -> int:
    """How deep a JSON value nests: 0 for a scalar, 1 for a flat object or list."""
    if isinstance(value, dict):
        return 1 + max((json_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((json_depth(v) for v in value), default=0)
    return 0


def json_value_schema(depth: int) -> dict[str, Any]:
    """The JSON schema of a value nested at most `depth` levels (as `json_depth` counts), with no NUL
    in its strings or keys: what the request validators accept, short of any size limit."""
    scalar: dict[str, Any] = {"type": ["string", "number", "boolean", "null"], "pattern": NO_NUL}
    if depth == 0:
        return scalar
    inner = json_value_schema(depth - 1)
    return {"anyOf": [scalar, {"type": "array", "items": inner},
                      {"type": "object", "propertyNames": {"pattern": NO_NUL}, "additionalProperties": inner}]}


def json_object_schema(max_depth: int, description: str) -> dict[str, Any]:
    """The schema of a JSON object nested at most `max_depth` levels, itself included."""
    return {"type": "object", "propertyNames": {"pattern": NO_NUL},
            "additionalProperties": json_value_schema(max_depth - 1), "description": description}
