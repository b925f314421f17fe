"""Parts of the Vercel AI SDK v5 UI message stream (protocol v1), as plain dicts.

The field names are the protocol's; `useChat` reads them as they are.
"""

from typing import Any

STREAM_HEADER = ("x-vercel-ai-ui-message-stream", "v1")


def start(message_id: str) -> dict:
    return {"type": "start", "messageId": message_id}


def start_step() -> dict:
    return {"type": "start-step"}


def finish_step() -> dict:
    return {"type": "finish-step"}


def finish() -> dict:
    return {"type": "finish"}


def text_start(part_id: str) -> dict:
    return {"type": "text-start", "id": part_id}


def text_delta(part_id: str, delta: str) -> dict:
    return {"type": "text-delta", "id": part_id, "delta": delta}


def text_end(part_id: str) -> dict:
    return {"type": "text-end", "id": part_id}


def reasoning_start(part_id: str) -> dict:
    return {"type": "reasoning-start", "id": part_id}


def reasoning_delta(part_id: str, delta: str) -> dict:
    return {"type": "reasoning-delta", "id": part_id, "delta": delta}


def reasoning_end(part_id: str) -> dict:
    return {"type": "reasoning-end", "id": part_id}


def tool_input_start(tool_call_id: str, tool_name: str) -> dict:
    return {"type": "tool-input-start", "toolCallId": tool_call_id, "toolName": tool_name}


def tool_input_delta(tool_call_id: str, delta: str) -> dict:
    return {"type": "tool-input-delta", "toolCallId": tool_call_id, "inputTextDelta": delta}


def tool_input_available(tool_call_id: str, tool_name: str, tool_input: Any) -> dict:
    return {"type": "tool-input-available", "toolCallId": tool_call_id, "toolName": tool_name, "input": tool_input}


def tool_output_available(tool_call_id: str, output: Any) -> dict:
    return {"type": "tool-output-available", "toolCallId": tool_call_id, "output": output}


def tool_output_error(tool_call_id: str, error_text: str) -> dict:
    return {"type": "tool-output-error", "toolCallId": tool_call_id, "errorText": error_text}


def tool_approval_request(approval_id: str, tool_call_id: str) -> dict:
    """AI SDK 6 and later: the call waits for the user's approval (`useChat`'s approval state)."""
    return {"type": "tool-approval-request", "approvalId": approval_id, "toolCallId": tool_call_id}


def tool_output_denied(tool_call_id: str) -> dict:
    """AI SDK 6 and later: the user declined the call."""
    return {"type": "tool-output-denied", "toolCallId": tool_call_id}


def error(error_text: str) -> dict:
    return {"type": "error", "errorText": error_text}


def abort() -> dict:
    return {"type": "abort"}


def data(name: str, payload: Any, transient: bool = False) -> dict:
    part = {"type": f"data-{name}", "data": payload}
    if transient:
        part["transient"] = True
    return part


# Which "end" part closes each "start" part, used to keep the stream well-formed after a crash.
CLOSERS = {"text-start": text_end, "reasoning-start": reasoning_end}
