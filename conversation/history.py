"""Builds the model's view of a session from its stored messages.

The history is always well-formed: every assistant tool call is followed by exactly one tool
result, reasoning rows are for people only, and system rows (markers such as "stopped by
user") are not instructions, so neither is sent.
"""

from typing import Iterable, Protocol

from models.turn import ModelMessage, ToolCall

SYSTEM_PROMPT = (
    "You are AutoPilot, a helpful copilot. Answer clearly and concisely. "
    "Use the tools you are given when they help; never invent tool results. "
    # The share of a conversation opens exactly the files its messages name this way.
    "Refer to a workspace file by its workspace://<id> URI, as the file tools give it."
)

MISSING_RESULT = '{"error": "no result was recorded for this tool call"}'


class StoredMessage(Protocol):
    role: str
    content: str
    tool_calls: list | None
    tool_call_id: str | None
    context: dict | None


def user_text_for_model(content: str, context: dict | None) -> str:
    """A user message as the model reads it: the text, then the page the user was on and the
    files attached to it (each file's text when it came with one, else its reference)."""
    if not context:
        return content
    blocks = [content]
    page = context.get("page")
    if page:
        blocks.append(f"[Page the user is on: {page.get('url', '')}]\n{page.get('content', '')}".rstrip())
    for attached in context.get("files") or []:
        header = (f"[Attached file: {attached['name']} ({attached['content_type']}, {attached['size_bytes']} bytes), "
                  f"workspace://{attached['file_id']}]")
        blocks.append(f"{header}\n{attached['text']}" if attached.get("text") is not None else header)
    return "\n\n".join(blocks)


def model_history(rows: Iterable[StoredMessage]) -> list[ModelMessage]:
    history = [ModelMessage(role="system", content=SYSTEM_PROMPT)]
    open_calls: list[str] = []

    def close_open_calls() -> None:
        # A result that was never recorded still gets one, or the provider rejects the history.
        for call_id in open_calls:
            history.append(ModelMessage(role="tool", tool_call_id=call_id, content=MISSING_RESULT))
        open_calls.clear()

    for row in rows:
        if row.role == "tool":
            if row.tool_call_id in open_calls:
                open_calls.remove(row.tool_call_id)
                history.append(ModelMessage(role="tool", tool_call_id=row.tool_call_id, content=row.content))
            continue  # a result whose call is unknown would also be rejected
        if row.role not in ("user", "assistant"):
            continue
        close_open_calls()
        if row.role == "user":
            history.append(ModelMessage(role="user", content=user_text_for_model(row.content, row.context)))
        else:
            calls = [ToolCall.model_validate(c) for c in (row.tool_calls or [])]
            history.append(ModelMessage(role="assistant", content=row.content, tool_calls=calls))
            open_calls.extend(c.id for c in calls)
    close_open_calls()
    return history
