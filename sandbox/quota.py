"""The per-session workspace disk quota, enforced without privileges.

Real disk quotas (user or project quotas) need root and a filesystem mounted for them, and a
size-limited filesystem per workspace would either need root too (a loop device) or lose the
files (tmpfs), while the workspace must persist on disk and be shared with other tools. So:

1. Before the call the workspace is measured (allocated blocks, hard links counted once).
   The call's RLIMIT_FSIZE is the smaller of ``file_size_bytes`` and what is left of the quota:
   a single write past it fails inside the sandbox (SIGXFSZ, or EFBIG where that is caught).
2. During the call a watchdog (``sandbox.quota_watch``) polls the filesystem's free space
   (every 2 ms while the sandbox uses CPU, every 20 ms while it idles) and walks the workspace
   again as soon as the space the call may have used passes the quota, and every 0.5-2 s
   regardless, adding files the call deleted but still holds open. When the walk confirms it,
   the sandbox is killed (``limit_hit="quota"``).
3. After the call it is measured again; ``quota_exceeded`` is reported when less than one
   filesystem block is left. RLIMIT_FSIZE is rounded down to whole blocks, so a file stopped by
   it never allocates past the quota.

**Overrun.** Many files, each below the limit, can be written before the watchdog reacts. The
overrun is what the sandbox writes in the reaction time: one free-space poll plus one walk plus
the kill, a few milliseconds for small trees. Measured against a 10 MB quota on a two-core VM
(page-cache writes of 1-2 GB/s), loops writing 1 MB files overran it by at most 2 MB in
bash, 5 MB from eight parallel shells, 10 MB from eight parallel ``dd`` and 12 MB from a tight
Python loop. The bound loosens to the periodic walk interval on filesystems whose free space
lags behind writes, and to twice a walk's duration when other writers keep the same
filesystem busy.

**What is done with it.** Nothing written is deleted: a partial download or build output may
be what the user needs to look at, a revert of modified files cannot restore their previous
content, and a host-side tool may have written into the workspace meanwhile. Instead an
over-quota (or full) workspace cannot grow further: the next call gets RLIMIT_FSIZE 0, so it
can delete files but not write any, and it is killed as soon as the workspace grows past the
smallest size it had during that call (or the quota, whichever is larger). The overrun never
accumulates beyond one call's, and the call after a clean-up has the freed room again.

The walk uses descriptors only (``openat`` with ``O_NOFOLLOW``), so a tree the sandbox changes
while a root worker walks it cannot redirect the walk, or a change of ownership or mode, to a
path outside it. A tree deeper than ``MAX_DEPTH`` directories cannot be measured and is treated
as over quota.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Any, Callable

from .identity import HostIdentity

MAX_DEPTH = 512
# bash's ulimit sets RLIMIT_FSIZE in KiB.
FSIZE_UNIT = 1024

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SETID_BITS = stat.S_ISUID | stat.S_ISGID


@dataclass(frozen=True)
class WorkspaceUsage:
    bytes_used: int
    complete: bool
    device: int
    block_size: int

    @property
    def effective_bytes(self) -> float:
        return self.bytes_used if self.complete else float("inf")


@dataclass(frozen=True)
class QuotaBudget:
    quota_bytes: int
    before: WorkspaceUsage

    @property
    def remaining_bytes(self) -> int:
        if not self.before.complete:
            return 0
        return max(0, self.quota_bytes - self.before.bytes_used)

    def kill_above_bytes(self, lowest_usage: float) -> float:
        """A workspace over quota may shrink, and not grow back past its lowest size."""
        return max(self.quota_bytes, min(self.before.effective_bytes, lowest_usage))

    def file_size_limit(self, file_size_bytes: int) -> int:
        unit = max(self.before.block_size, FSIZE_UNIT)
        return min(file_size_bytes, self.remaining_bytes // unit * unit)

    def exhausted(self, usage: WorkspaceUsage) -> bool:
        return usage.effective_bytes > self.quota_bytes - max(usage.block_size, FSIZE_UNIT)


def measure(root_fd: int, *, adopt: HostIdentity | None = None, strip_setid: bool = False) -> WorkspaceUsage:
    """Allocated bytes under ``root_fd``, on its filesystem only.

    ``adopt`` hands every entry to that host account (files a root-side tool wrote must be
    writable by the sandbox). ``strip_setid`` clears set-uid and set-gid bits on regular files,
    so nothing the sandbox leaves behind runs with its account's rights for another host user.
    """
    root = os.fstat(root_fd)
    if adopt is not None and (root.st_uid, root.st_gid) != (adopt.uid, adopt.gid):
        os.fchown(root_fd, adopt.uid, adopt.gid)
    total = root.st_blocks * 512
    linked: set[int] = set()
    complete = True
    stack = [(os.dup(root_fd), iter(_entries(root_fd)))]
    try:
        while stack:
            directory_fd, entries = stack[-1]
            entry = next(entries, None)
            if entry is None:
                os.close(directory_fd)
                stack.pop()
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if info.st_dev != root.st_dev:
                continue  # a mount point inside the workspace is not the workspace's disk
            if info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode):
                if info.st_ino in linked:
                    continue
                linked.add(info.st_ino)
            total += info.st_blocks * 512
            if adopt is not None and (info.st_uid, info.st_gid) != (adopt.uid, adopt.gid):
                _ignore_vanished(os.chown, entry.name, adopt.uid, adopt.gid, dir_fd=directory_fd,
                                 follow_symlinks=False)
            if strip_setid and stat.S_ISREG(info.st_mode) and info.st_mode & _SETID_BITS:
                _clear_setid(directory_fd, entry.name, info)
            if stat.S_ISDIR(info.st_mode):
                if len(stack) >= MAX_DEPTH:
                    complete = False
                    continue
                child = _open_directory(directory_fd, entry.name, info)
                if child is None:
                    complete = False
                    continue
                stack.append((child, iter(_entries(child))))
    finally:
        for directory_fd, _ in stack:
            os.close(directory_fd)
    return WorkspaceUsage(bytes_used=total, complete=complete, device=root.st_dev, block_size=os.fstatvfs(root_fd).f_bsize)


def measure_and_close(own_fd: int, *, adopt: HostIdentity | None = None) -> WorkspaceUsage:
    """``measure`` (clearing set-id bits) through a descriptor of its own, closed when done: a
    walk still running in its thread after the call ended never touches a descriptor number
    the call has closed and the process may have reused."""
    try:
        return measure(own_fd, adopt=adopt, strip_setid=True)
    finally:
        os.close(own_fd)


def _entries(directory_fd: int) -> list[os.DirEntry[str]]:
    # Listed in full so the directory's descriptor is the only one held per level.
    with os.scandir(directory_fd) as iterator:
        return list(iterator)


def _open_directory(parent_fd: int, name: str, info: os.stat_result) -> int | None:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except FileNotFoundError:
        return None
    except PermissionError:
        # A worker that is not root can still enter a directory the command made unreadable,
        # since the worker owns it; anything else stays unmeasurable.
        if info.st_uid != os.geteuid() or not _chmod_entry(parent_fd, name, info, info.st_mode | stat.S_IRWXU):
            return None
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError:
            return None
    except OSError:
        return None


def _clear_setid(parent_fd: int, name: str, info: os.stat_result) -> None:
    _chmod_entry(parent_fd, name, info, stat.S_IMODE(info.st_mode) & ~_SETID_BITS)


def _chmod_entry(parent_fd: int, name: str, info: os.stat_result, mode: int) -> bool:
    """chmod the entry itself: through an O_PATH descriptor checked to be the inode that was
    measured, since chmod by name would follow a symlink swapped in meanwhile."""
    try:
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    except OSError:
        return False
    try:
        current = os.fstat(fd)
        if (current.st_dev, current.st_ino) != (info.st_dev, info.st_ino) or stat.S_ISLNK(current.st_mode):
            return False
        os.chmod(f"/proc/self/fd/{fd}", stat.S_IMODE(mode))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _ignore_vanished(function: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    try:
        function(*args, **kwargs)
    except FileNotFoundError:
        pass
