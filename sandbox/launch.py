"""One bwrap invocation: its argument vector and the descriptors it inherits."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from typing import Any

from . import layout, seccomp
from .identity import HostIdentity
from .launcher import COMMAND_FILE, command_is_inline, launcher_argv
from .limits import SandboxLimits
from .portal import Portal


@dataclass
class Launch:
    """Owns every descriptor it lists; ``close`` releases whatever is still open."""

    argv: list[str]
    pass_fds: list[int]
    """Inherited by bwrap under their own numbers."""
    stdout_write: int
    stderr_write: int
    stdout_fd: int
    stderr_fd: int
    status_fd: int
    started_fd: int
    _open: set[int] = field(default_factory=set)

    @property
    def child_fds(self) -> list[int]:
        return [*self.pass_fds, self.stdout_write, self.stderr_write]

    def close_child_fds(self) -> None:
        """After the spawn: bwrap has its copies, and the parent must not keep the write ends
        of the pipes (their readers would never see end-of-file)."""
        for fd in self.child_fds:
            self._close(fd)

    def release(self, fd: int) -> int:
        """Hand one of the parent's ends to a new owner."""
        self._open.discard(fd)
        return fd

    def close(self) -> None:
        for fd in list(self._open):
            self._close(fd)

    def _close(self, fd: int) -> None:
        if fd in self._open:
            self._open.discard(fd)
            os.close(fd)

    def __enter__(self) -> Launch:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def prepare(bwrap: str, *, workspace_fd: int, portal: Portal | None, command: str, limits: SandboxLimits,
            file_size_bytes: int) -> Launch:
    """``portal`` set: bwrap binds the workspace from the portal's path (see ``sandbox.portal``),
    else from ``workspace_fd``, which it then inherits."""
    if "\0" in command:
        raise ValueError("the command contains a NUL byte")
    opened: list[int] = []
    try:
        stdout_read, stdout_write = _pipe(opened)
        stderr_read, stderr_write = _pipe(opened)
        status_read, status_write = _pipe(opened)
        started_read, started_write = _pipe(opened)
        seccomp_fd = _memfd("seccomp", seccomp.build_filter(), opened)
        data_files = layout.etc_files()
        if not command_is_inline(command):
            data_files.append(layout.DataFile(COMMAND_FILE, command.encode()))
        data_fds = [(_memfd("data", item.content, opened), item.path) for item in data_files]
    except BaseException:
        for fd in opened:
            os.close(fd)
        raise

    argv = [bwrap]
    argv += layout.namespace_args()
    argv += layout.environment_args()
    argv += ["--seccomp", str(seccomp_fd), "--json-status-fd", str(status_write)]
    if portal is not None:
        workspace_args = ["--bind", portal.path, layout.WORKSPACE]
    else:
        workspace_args = ["--bind-fd", str(workspace_fd), layout.WORKSPACE]
    argv += layout.filesystem_args(limits, workspace_args=workspace_args, data_fds=data_fds)
    argv += ["--"]
    argv += launcher_argv(limits, file_size_bytes=file_size_bytes, started_fd=started_write, command=command)
    pass_fds = [status_write, started_write, seccomp_fd, *(fd for fd, _ in data_fds)]
    if portal is None:
        pass_fds.append(workspace_fd)
    return Launch(argv=argv, pass_fds=pass_fds, stdout_write=stdout_write, stderr_write=stderr_write,
                  stdout_fd=stdout_read, stderr_fd=stderr_read, status_fd=status_read, started_fd=started_read,
                  _open=set(opened))


def spawn_options(identity: HostIdentity | None, launch: Launch) -> dict[str, Any]:
    """Keyword arguments for ``subprocess.Popen``."""
    options: dict[str, Any] = {
        # Nothing of the worker's environment: bwrap becomes the sandbox's pid 1, whose
        # environment any process in the sandbox can read from /proc/1/environ.
        "env": {},
        "stdin": subprocess.DEVNULL,
        "stdout": launch.stdout_write,
        "stderr": launch.stderr_write,
        "pass_fds": tuple(launch.pass_fds),
        "close_fds": True,
        # Its own process group and session: a terminal's job-control signals to the worker
        # are not the sandbox's to receive; its lifetime is managed by the runner.
        "start_new_session": True,
        "umask": 0o022,
    }
    if identity is not None:
        options.update(user=identity.uid, group=identity.gid, extra_groups=[])
    return options


def _pipe(opened: list[int]) -> tuple[int, int]:
    read_end, write_end = os.pipe()
    opened += [read_end, write_end]
    return read_end, write_end


def _memfd(name: str, content: bytes, opened: list[int]) -> int:
    # A memfd rather than a pipe: bwrap reads it after it starts, and a pipe would block the
    # writer on content larger than the pipe buffer (a long command).
    fd = os.memfd_create(f"sandbox-{name}", os.MFD_CLOEXEC)
    opened.append(fd)
    view = memoryview(content)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
