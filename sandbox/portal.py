"""How a root worker hands a workspace to a sandbox whose host account cannot reach it.

bwrap resolves every source path as the sandbox's host account (``--bind-fd`` included: it
turns the descriptor back into a path), so a workspace below a directory that account cannot
search, such as a root-owned ``0700`` data or temporary directory, cannot be bound. A root
worker therefore starts bwrap from a thread in a private mount namespace of its own, where the
workspace (opened by descriptor and checked to be the same inode) is also bind-mounted below a
small ``0711`` tmpfs the account can search. Nothing changes on the host: the namespace and its
mounts exist only for that thread and the sandbox copied from it, and vanish with them.
"""

from __future__ import annotations

import ctypes
import os

from .layout import WORKSPACE

_CLONE_NEWNS = 0x00020000
_MS_NOSUID = 0x2
_MS_NODEV = 0x4
_MS_NOEXEC = 0x8
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 0x40000

# Directories a private namespace may cover: none holds anything bwrap reads from the host,
# and the workspace is bound by descriptor, so it may live below one of them.
_BASES = ("/tmp", "/mnt", "/srv", "/media", "/run")

_libc = ctypes.CDLL(None, use_errno=True)


class Portal:
    """Built before the spawn (its path goes into bwrap's arguments), entered in the spawning
    thread, which must be a thread of its own: the mount namespace stays with it."""

    def __init__(self, engine: str) -> None:
        self.base = _choose_base(engine)
        self.path = os.path.join(self.base, WORKSPACE.lstrip("/"))

    def enter(self, workspace_fd: int) -> None:
        # The path is read before the namespace changes, so it is the host's path.
        path = os.readlink(f"/proc/self/fd/{workspace_fd}")
        expected = os.fstat(workspace_fd)
        _check(_libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
        # Opened again inside the new namespace: a bind mount's source must belong to it.
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            found = os.fstat(fd)
            if (found.st_dev, found.st_ino) != (expected.st_dev, expected.st_ino):
                raise OSError(f"the workspace at {path} was replaced while the sandbox started")
            _mount("tmpfs", self.base, "tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, "mode=0711,size=64k")
            os.mkdir(self.path, 0o700)
            _mount(f"/proc/self/fd/{fd}", self.path, None, _MS_BIND)
        finally:
            os.close(fd)


def _choose_base(engine: str) -> str:
    engine_path = os.path.realpath(engine)
    for base in _BASES:
        if os.path.isdir(base) and not os.path.islink(base) and os.path.commonpath([base, engine_path]) != base:
            return base
    raise OSError(f"no directory to mount the workspace portal on: each of {', '.join(_BASES)} is missing "
                  f"or holds {engine_path}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    result = _libc.mount(_encode(source), _encode(target), _encode(fstype), ctypes.c_ulong(flags), _encode(data))
    _check(result, f"mount {source or ''} on {target}")


def _encode(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")
