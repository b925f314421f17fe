"""Redis key names besides the turn stream itself (`models.keys.turn_stream_key`)."""


def latest_turn_key(session_id: str) -> str:
    """Holds the id of the session's most recent turn, so a client can re-attach to it."""
    return f"copilot:session:{session_id}:latest-turn"


def publish_dedup_key(stream_key: str, dedup_key: str) -> str:
    return f"{stream_key}:published:{dedup_key}"


def closed_key(stream_key: str) -> str:
    """Present once the turn's stream is closed to model-round parts."""
    return f"{stream_key}:closed"
