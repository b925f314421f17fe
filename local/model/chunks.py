"""OpenAI `chat.completion.chunk` objects as a provider streams them (OpenRouter's extras included)."""

import json
from typing import Any, Literal, Optional

ReasoningShape = Literal["reasoning", "reasoning_content", "reasoning_details"]


def chunk(delta: dict[str, Any], finish_reason: Optional[str] = None, model: str = "offline",
          completion_id: str = "chatcmpl-offline") -> dict[str, Any]:
    return {"id": completion_id, "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}


def text(content: str) -> dict[str, Any]:
    return chunk({"role": "assistant", "content": content})


def reasoning(content: str, shape: ReasoningShape = "reasoning") -> dict[str, Any]:
    if shape == "reasoning_details":
        return chunk({"role": "assistant", "content": None,
                      "reasoning_details": [{"type": "reasoning.text", "text": content}]})
    return chunk({"role": "assistant", "content": None, shape: content})


def tool_call(index: int, arguments: str, call_id: Optional[str] = None, name: Optional[str] = None) -> dict[str, Any]:
    """One fragment of a tool call: the first carries id and name, later ones only arguments."""
    fragment: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id:
        fragment["id"] = call_id
        fragment["type"] = "function"
    if name:
        fragment["function"]["name"] = name
    return chunk({"role": "assistant", "content": None, "tool_calls": [fragment]})


def finish(reason: str = "stop") -> dict[str, Any]:
    return chunk({}, finish_reason=reason)


def usage(prompt_tokens: int, completion_tokens: int, cost_usd: Optional[float]) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                            "total_tokens": prompt_tokens + completion_tokens}
    if cost_usd is not None:
        body["cost"] = cost_usd
    return {"id": "chatcmpl-offline", "object": "chat.completion.chunk", "created": 0, "model": "offline",
            "choices": [], "usage": body}


def sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


SSE_DONE = b"data: [DONE]\n\n"
