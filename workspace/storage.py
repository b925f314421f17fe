"""Where file bytes live. One interface; the disk implementation is the default."""

from pathlib import Path
from typing import Protocol


class WorkspaceStorage(Protocol):
    async def put(self, user_id: str, file_id: str, data: bytes) -> None: ...

    async def get(self, user_id: str, file_id: str) -> bytes: ...


class DiskStorage:
    """Files under `{root}/{user_id}/{file_id}`. Ids are generated (uuid hex), never user input,
    so no path a caller chooses ever reaches the file system."""

    def __init__(self, root: Path):
        self.root = root

    def _path(self, user_id: str, file_id: str) -> Path:
        folder = self.root / user_id.replace("/", "_")
        return folder / file_id

    async def put(self, user_id: str, file_id: str, data: bytes) -> None:
        path = self._path(user_id, file_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    async def get(self, user_id: str, file_id: str) -> bytes:
        return self._path(user_id, file_id).read_bytes()
