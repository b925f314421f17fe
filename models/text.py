"""What PostgreSQL can store as text: the one place stored strings are made fit for it.

PostgreSQL refuses the NUL character in `text` and `jsonb` ("invalid byte sequence for encoding
UTF8: 0x00"), and Python strings may hold lone surrogates that are no UTF-8 at all. Text that a
person typed with such characters is refused at the API with a 422 naming the field (see
`refuse_unstorable`); text that a model, a tool or a provider produced is cleaned here, so it
can never make a write fail for good and hold a turn in its retries.
"""

from typing import Any

REPLACEMENT = "\ufffd"


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
