"""Where file bytes live. One interface; the disk implementation is the default.

A file saved in a session lives in that session's folder under its own name: the folder that
`bash_exec` sees as `/workspace`, so a script the assistant saves is the file the sandbox runs,
and a file a command writes is one the assistant can read back. The sandbox can leave anything
in that folder (a symlink to a host file, a FIFO), so every open here refuses to follow a
symlink and reads or writes regular files only.
"""

import errno
import os
import shutil
import stat
from pathlib import Path
from typing import Optional, Protocol

SESSIONS_FOLDER = "sessions"
READ_CHUNK = 1 << 16


class StorageRefused(OSError):
    """The path is not a regular file of the workspace (a symlink, a FIFO, a folder)."""


class WorkspaceStorage(Protocol):
    async def put(self, user_id: str, file_id: str, data: bytes, session_id: Optional[str] = None,
                  name: Optional[str] = None) -> None: ...

    async def get(self, user_id: str, file_id: str, session_id: Optional[str] = None,
                  name: Optional[str] = None) -> bytes: ...

    def session_folder(self, session_id: str) -> Path: ...

    def session_usage(self, session_id: str) -> int: ...

    def remove_session(self, session_id: str) -> None: ...


def read_regular_file(path: Path, limit: Optional[int] = None) -> bytes:
    """The bytes of a regular file, never through a symlink; at most `limit` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as failure:
        if failure.errno == errno.ELOOP:
            raise StorageRefused(errno.ELOOP, "not a regular file", str(path)) from None
        raise
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise StorageRefused(errno.EINVAL, "not a regular file", str(path))
        return handle.read() if limit is None else handle.read(limit)


def write_regular_file(path: Path, data: bytes) -> None:
    """Writes through no symlink: a link planted under the name is replaced, its target untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        if path.is_dir() and not path.is_symlink():
            raise StorageRefused(errno.EISDIR, "a folder has this name", str(path))
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def folder_usage(folder: Path) -> int:
    """Bytes of the regular files under a folder (links are not followed, nor counted twice)."""
    total, seen = 0, set()
    for directory, _folders, files in os.walk(folder):
        for name in files:
            try:
                info = os.lstat(os.path.join(directory, name))
            except FileNotFoundError:
                continue
            if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_blocks * 512 if info.st_blocks else info.st_size
    return total


class DiskStorage:
    """Session files under `{root}/sessions/{session_id}/{name}`; files of no session under
    `{root}/{user_id}/{file_id}`. Names are checked (`workspace.files.check_name`: no '/', no
    '..') and ids generated, so no path a caller chooses leaves its folder."""

    def __init__(self, root: Path):
        self.root = root.resolve()

    def session_folder(self, session_id: str) -> Path:
        folder = self.root / SESSIONS_FOLDER / session_id.replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def session_usage(self, session_id: str) -> int:
        return folder_usage(self.session_folder(session_id))

    def remove_session(self, session_id: str) -> None:
        """Removes the session's folder and all in it. Never follows a symlink out of it; a
        folder the sandbox made unwritable is made writable first."""
        folder = self.root / SESSIONS_FOLDER / session_id.replace("/", "_")

        def unlock_and_retry(function, path, _error) -> None:
            parent = os.path.dirname(path)
            if not os.path.islink(parent):
                os.chmod(parent, 0o700)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, 0o700)
                shutil.rmtree(path, onerror=unlock_and_retry)
            elif os.path.lexists(path):
                function(path)

        if os.path.isdir(folder) and not os.path.islink(folder):
            shutil.rmtree(folder, onerror=unlock_and_retry)

    def _user_path(self, user_id: str, file_id: str) -> Path:
        return self.root / user_id.replace("/", "_") / file_id

    def _path(self, user_id: str, file_id: str, session_id: Optional[str], name: Optional[str]) -> Path:
        if session_id and name:
            return self.session_folder(session_id) / name
        return self._user_path(user_id, file_id)

    async def put(self, user_id: str, file_id: str, data: bytes, session_id: Optional[str] = None,
                  name: Optional[str] = None) -> None:
        write_regular_file(self._path(user_id, file_id, session_id, name), data)

    async def get(self, user_id: str, file_id: str, session_id: Optional[str] = None,
                  name: Optional[str] = None) -> bytes:
        path = self._path(user_id, file_id, session_id, name)
        if not os.path.lexists(path) and session_id:
            path = self._user_path(user_id, file_id)  # stored before session files had names
        return read_regular_file(path)
