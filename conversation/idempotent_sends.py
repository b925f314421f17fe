"""Sends with an `Idempotency-Key`: a client that retries after a lost response gets the outcome
of its first send, and nothing is stored twice.

The record lives in Redis for the key's window: first a claim (so two copies of one request
racing each other cannot both send), then the outcome. It holds ids and a hash of the text,
never the text. The message id is derived from the key, so even a send whose outcome was never
recorded reaches the turn under the same id, and Temporal's update ids deduplicate it there.
"""

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Optional

from redis.asyncio import Redis

from models.turn import SubmitResult

CLAIM_SECONDS = 60  # how long a send may take before its claim lapses and a retry may send again
_PENDING = "pending"


class KeyInUse(Exception):
    """The same key is being sent right now (the first copy has not answered yet)."""


class KeyReused(Exception):
    """The key was used for a different message or session."""


@dataclass(frozen=True)
class IdempotentSend:
    redis: Redis
    user_id: str
    session_id: str
    key: str
    text: str
    window_seconds: int

    @property
    def record_key(self) -> str:
        digest = hashlib.sha256(f"{self.user_id}\0{self.key}".encode()).hexdigest()
        return f"copilot:idempotency:{digest}"

    @property
    def message_id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"copilot-send/{self.user_id}/{self.session_id}/{self.key}"))

    def _fingerprint(self) -> str:
        return hashlib.sha256(f"{self.session_id}\0{self.text}".encode()).hexdigest()

    async def earlier_outcome(self) -> Optional[SubmitResult]:
        """The outcome of the first send with this key, or None after claiming the key for this one.
        Raises KeyInUse while the first is still sending, KeyReused for another message."""
        claim = json.dumps({"state": _PENDING, "fingerprint": self._fingerprint()})
        if await self.redis.set(self.record_key, claim, nx=True, ex=CLAIM_SECONDS):
            return None
        raw = await self.redis.get(self.record_key)
        if raw is None:  # expired between the two calls: claim it again
            return await self.earlier_outcome()
        record = json.loads(raw)
        if record["fingerprint"] != self._fingerprint():
            raise KeyReused()
        if record["state"] == _PENDING:
            raise KeyInUse()
        return SubmitResult.model_validate(record["outcome"])

    async def remember(self, outcome: SubmitResult) -> None:
        record = {"state": "done", "fingerprint": self._fingerprint(), "outcome": outcome.model_dump()}
        await self.redis.set(self.record_key, json.dumps(record), ex=self.window_seconds)

    async def release(self) -> None:
        """The send was refused: the key is free for another attempt."""
        await self.redis.delete(self.record_key)
