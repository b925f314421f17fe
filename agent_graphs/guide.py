"""The agent-building guide: a markdown file shipped with the package, which the guide tool hands
to the model and a builder session's system prompt carries whole."""

from functools import lru_cache
from pathlib import Path

GUIDE_PATH = Path(__file__).with_name("building_guide.md")


@lru_cache
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()


def load_guide() -> str:
    """The guide's text; raises OSError when the file cannot be read (a failed read is not cached)."""
    return _read(GUIDE_PATH)
