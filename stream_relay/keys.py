"""Redis key names, in one place."""


def turn_stream_key(session_id: str, turn_id: str) -> str:
    return f"copilot:stream:{session_id}:{turn_id}"


def latest_turn_key(session_id: str) -> str:
    """Holds the id of the session's most recent turn, so a client can re-attach to it."""
    return f"copilot:session:{session_id}:latest-turn"


def publish_dedup_key(stream_key: str, dedup_key: str) -> str:
    return f"{stream_key}:published:{dedup_key}"
