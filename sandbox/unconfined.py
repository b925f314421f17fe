"""A command with no sandbox: `BASH_SANDBOX=none`, for a developer's own machine only.

It runs as the worker's own OS user and can read whatever that user can, reach the network and
the host's services, and leave its folder. What it keeps from the sandbox: the working directory,
an empty environment, per-process limits, output read incrementally and capped, and a timeout
that kills its whole process group.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import resource
import signal
import time
from pathlib import Path

from .capture import CappedStream
from .limits import SandboxLimits, SandboxResult

PR_SET_PDEATHSIG = 1
READ_SIZE = 1 << 16


def _preexec(limits: SandboxLimits):
    def apply() -> None:
        try:  # the command dies with the worker, so a crashed worker leaves no orphan behind
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except OSError:
            pass
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
        address_space = limits.effective_address_space_bytes
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_bytes, limits.file_size_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    return apply


async def _drain(stream: asyncio.StreamReader, sink: CappedStream) -> None:
    while chunk := await stream.read(READ_SIZE):
        sink.feed(chunk)


async def run_unconfined(command: str, workspace: Path, limits: SandboxLimits) -> SandboxResult:
    started = time.monotonic()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(workspace), "LANG": "C.UTF-8"}
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", command, cwd=workspace, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
        preexec_fn=_preexec(limits),
    )
    stdout, stderr = CappedStream(limits.output_max_bytes), CappedStream(limits.output_max_bytes)
    readers = asyncio.gather(_drain(process.stdout, stdout), _drain(process.stderr, stderr), process.wait())
    timed_out = False
    try:
        await asyncio.wait_for(asyncio.shield(readers), limits.timeout_seconds)
    except asyncio.TimeoutError:
        timed_out = True
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # the group: children it left behind go too
        except ProcessLookupError:
            pass
    try:  # a child that left the group (setsid) may hold the pipes open: stop reading after a moment
        await asyncio.wait_for(readers, 1)
    except asyncio.TimeoutError:
        pass
    (out, out_cut), (err, err_cut) = stdout.result(), stderr.result()
    code = process.returncode if process.returncode is not None else -9
    return SandboxResult(
        exit_code=None if timed_out else (128 - code if code < 0 else code), stdout=out, stderr=err,
        stdout_cut_bytes=out_cut, stderr_cut_bytes=err_cut, timed_out=timed_out, quota_exceeded=False,
        limit_hit="timeout" if timed_out else None, duration_seconds=time.monotonic() - started,
    )
