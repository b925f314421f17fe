"""What the sandbox's processes use right now, summed over all of them.

The processes are read through the sandbox's own procfs (``/proc/<pid 1>/root/proc``), which
lists its PID namespace and nothing else: a sample costs a few reads per sandboxed process,
however many processes the host runs, and no process of the call can be missed, since every one
of them lives in that namespace.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_REAPER_NS_PID = "1"

# Positions in /proc/<pid>/stat after the command name, counted from the state field (field 3).
_UTIME, _STIME, _CUTIME, _CSTIME, _THREADS, _RSS = 11, 12, 13, 14, 17, 21

# The sandbox's memory-backed filesystems. Their data is capped by their size, but each file
# also costs the kernel an inode and a dentry (about 1 KiB) that no size limit covers.
_TMPFS_MOUNTS = ("tmp", "dev/shm")
TMPFS_FILE_COST_BYTES = 1024


@dataclass(frozen=True)
class TreeSample:
    tasks: int
    """Threads of every process but the reaper: what the sandbox's RLIMIT_NPROC counts."""
    memory_bytes: int
    """Resident memory, plus the pages of memfds held open (which no RSS shows until mapped),
    plus the kernel's share of each file on the sandbox's tmpfs mounts."""
    cpu_seconds: float
    """CPU time of the live processes and of the exited ones their parents collected."""
    deleted_workspace_bytes: int
    """Files on the workspace's filesystem that were deleted but are still held open: they use
    disk, yet a walk of the workspace does not find them."""


def sample(reaper_pid: int, workspace_device: int) -> TreeSample | None:
    """``None`` when the sandbox's procfs cannot be read: before bwrap has moved into the
    sandbox's root, or once the sandbox is gone (a reused pid then shows the host's /proc,
    which is told apart by its device)."""
    root = f"/proc/{reaper_pid}/root"
    procfs = f"{root}/proc"
    try:
        if os.stat(procfs).st_dev == os.stat("/proc").st_dev:
            return None
        pids = [name for name in os.listdir(procfs) if name.isdigit()]
    except OSError:
        return None
    tasks = 0
    resident_pages = 0
    ticks = 0
    held: dict[tuple[int, int], tuple[bool, int]] = {}
    for pid in pids:
        try:
            with open(f"{procfs}/{pid}/stat", "rb") as file:
                fields = file.read().rpartition(b")")[2].split()
        except OSError:
            continue  # exited meanwhile
        ticks += int(fields[_UTIME]) + int(fields[_STIME]) + int(fields[_CUTIME]) + int(fields[_CSTIME])
        resident_pages += int(fields[_RSS])
        if pid != _REAPER_NS_PID:
            tasks += int(fields[_THREADS])
        _held_files(f"{procfs}/{pid}/fd", workspace_device, held)
    memfd_bytes = sum(size for on_workspace, size in held.values() if not on_workspace)
    deleted_bytes = sum(size for on_workspace, size in held.values() if on_workspace)
    return TreeSample(tasks=tasks, memory_bytes=resident_pages * _PAGE_SIZE + memfd_bytes + _tmpfs_file_bytes(root),
                      cpu_seconds=ticks / _CLOCK_TICKS, deleted_workspace_bytes=deleted_bytes)


def _held_files(fd_directory: str, workspace_device: int, held: dict[tuple[int, int], tuple[bool, int]]) -> None:
    """Unlinked regular files among the process's descriptors, by inode (shared ones once)."""
    try:
        with os.scandir(fd_directory) as descriptors:
            for descriptor in descriptors:
                try:
                    info = os.stat(descriptor.path)
                    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 0:
                        continue
                    key = (info.st_dev, info.st_ino)
                    if key in held:
                        continue
                    if info.st_dev == workspace_device:
                        held[key] = (True, info.st_blocks * 512)
                    elif os.readlink(descriptor.path).startswith("/memfd:"):
                        held[key] = (False, info.st_blocks * 512)
                except OSError:
                    continue
    except OSError:
        return


def _tmpfs_file_bytes(root: str) -> int:
    total = 0
    for mount in _TMPFS_MOUNTS:
        try:
            # Through the sandbox's own root: its / is read-only, so these are its mounts.
            info = os.statvfs(f"{root}/{mount}")
        except OSError:
            continue
        total += (info.f_files - info.f_ffree) * TMPFS_FILE_COST_BYTES
    return total
