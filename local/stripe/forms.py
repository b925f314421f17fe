"""Stripe's form encoding: `a[b][0][c]=v` pairs into nested dicts and lists.

The `stripe` library sends every v1 request this way (the body of a POST, the query string of a
GET or DELETE): lists as `key[0]`, `key[1]`, ..., nested objects as `key[sub]`, booleans as
`true`/`false`, and every value as a string. `expand[]=x` (the server-side spelling) appends.
"""

from typing import Any, Iterable
from urllib.parse import parse_qsl

# Children of these keys are free-form names chosen by the caller, so a metadata key such as
# "0" must stay a dict key instead of turning the metadata into a list.
FREE_FORM_KEYS = frozenset({"metadata"})


class FormError(ValueError):
    """The pairs do not describe one consistent tree (e.g. both `a=1` and `a[b]=2`)."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def split_key(key: str) -> list[str]:
    """`a[b][0][]` -> ["a", "b", "0", ""]."""
    head, bracket, rest = key.partition("[")
    parts = [head]
    while bracket:
        inner, closing, rest = rest.partition("]")
        if not closing:
            raise FormError(f"Invalid parameter name: {key}", key)
        parts.append(inner)
        _, bracket, rest = rest.partition("[")
    return parts


def parse_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in pairs:
        parts = split_key(key)
        node = tree
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise FormError(f"Invalid parameter: {key} mixes a value and an object", "[".join(parts[:depth + 1]))
            node = child
        last = parts[-1]
        if last == "":
            # `expand[]=a&expand[]=b`: number the entries so they become a list below.
            last = str(len(node))
        if isinstance(node.get(last), dict):
            raise FormError(f"Invalid parameter: {key} mixes a value and an object", key)
        node[last] = value
    return _listify(tree, parent="")


def parse_query(query: str | bytes) -> dict[str, Any]:
    """A query string or a form body, as the `stripe` library sends it."""
    if isinstance(query, bytes):
        query = query.decode("utf-8")
    return parse_pairs(parse_qsl(query, keep_blank_values=True))


def _listify(node: Any, parent: str) -> Any:
    if not isinstance(node, dict):
        return node
    if parent in FREE_FORM_KEYS:
        return {key: _listify(value, key) for key, value in node.items()}
    converted = {key: _listify(value, key) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        indexes = sorted(int(key) for key in converted)
        if indexes == list(range(len(indexes))):
            return [converted[str(i)] for i in indexes]
    return converted
