"""Starting bwrap from a thread of its own, which then waits for it.

The thread is the process's parent for its whole life, which is what ``--die-with-parent``
(PR_SET_PDEATHSIG, tied to the parent *thread*) needs, and it can enter a private mount
namespace for the spawn (``sandbox.portal``) without touching the rest of the worker. The exit
status is reaped by that thread; signals go through a pidfd opened before anything could reap
the process, so they can never reach a reused pid.
"""

from __future__ import annotations

import os
import subprocess
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from .portal import Portal


@dataclass(frozen=True)
class Started:
    pid: int
    pidfd: int
    exit_status: Future[int]


def start(argv: list[str], options: dict[str, Any], *, portal: Portal | None, workspace_fd: int) -> Future[Started]:
    started: Future[Started] = Future()
    thread = threading.Thread(target=_spawn_and_wait, args=(argv, options, portal, workspace_fd, started),
                              name="sandbox-spawn", daemon=True)
    thread.start()
    return started


def _spawn_and_wait(argv: list[str], options: dict[str, Any], portal: Portal | None, workspace_fd: int,
                    started: Future[Started]) -> None:
    exit_status: Future[int] = Future()
    try:
        if portal is not None:
            portal.enter(workspace_fd)
        process = subprocess.Popen(argv, **options)
    except BaseException as error:
        started.set_exception(error)
        return
    try:
        pidfd = os.pidfd_open(process.pid)
    except OSError as error:
        process.kill()
        process.wait()
        started.set_exception(error)
        return
    started.set_result(Started(pid=process.pid, pidfd=pidfd, exit_status=exit_status))
    exit_status.set_result(process.wait())
