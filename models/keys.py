"""The keys that make a turn's writes idempotent, in one place.

A retried activity writes the same rows and publishes the same parts under the same keys, so
the database (unique on session and key) and the stream (a published-once marker per key) keep
one copy. The keys are part of what recorded histories replay: changing one changes the
commands an in-flight turn issues.
"""


def turn_stream_key(session_id: str, turn_id: str) -> str:
    """The Redis stream that carries one turn's UI parts."""
    return f"copilot:stream:{session_id}:{turn_id}"


# Rows of chat_messages, unique per session.
def user_row(message_id: str) -> str:
    return f"user:{message_id}"


def assistant_row(round_index: int) -> str:
    return f"assistant:{round_index}"


def reasoning_row(round_index: int) -> str:
    return f"reasoning:{round_index}"


def tool_row(tool_call_id: str) -> str:
    return f"tool:{tool_call_id}"


ROUND_CAP_ROW = "round-cap"
SPEND_LIMIT_ROW = "spend-limit"
TURN_ERROR_ROW = "turn-error"
STOP_ROW = "stop"


# Parts published once per turn stream.
def start_step_part(round_index: int) -> str:
    return f"start-step-{round_index}"


def finish_step_part(round_index: int) -> str:
    return f"finish-step-{round_index}"


def approval_request_part(tool_call_id: str) -> str:
    return f"approval-request-{tool_call_id}"


def tool_output_part(tool_call_id: str) -> str:
    return f"tool-output-{tool_call_id}"


def pending_delivered_part(round_index: int) -> str:
    return f"pending-delivered-{round_index}"


FINISH_PART = "finish"


# Ledger entries, unique per user.
def tool_charge(turn_id: str, tool_call_id: str) -> str:
    return f"tool:{turn_id}:{tool_call_id}"
