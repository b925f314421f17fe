"""Output kept up to a cap while the command runs, the rest counted and dropped."""

from __future__ import annotations

import codecs


class CappedStream:
    """Keeps the first ``cap`` bytes. Memory stays at ``cap`` plus one read from the pipe
    however much the command prints, since the pipe keeps being drained (a writer blocked on a
    full pipe would hang the command instead)."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._kept = bytearray()
        self._dropped = 0

    def feed(self, data: bytes) -> None:
        room = self._cap - len(self._kept)
        if room >= len(data):
            self._kept += data
            return
        if room > 0:
            self._kept += data[:room]
        self._dropped += len(data) - max(room, 0)

    def result(self) -> tuple[str, int]:
        """The text and the number of bytes dropped. A multi-byte character the cap cut in
        half counts as dropped rather than turning into a replacement character."""
        if not self._dropped:
            return self._kept.decode("utf-8", errors="replace"), 0
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = decoder.decode(bytes(self._kept), final=False)
        pending, _ = decoder.getstate()
        return text, self._dropped + len(pending)
