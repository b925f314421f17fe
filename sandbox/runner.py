"""One command in a fresh sandbox, supervised until every process of it is gone."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Callable

import psutil

from . import launch, process_tree, quota, quota_watch, spawn
from .availability import SandboxUnavailable, cached_probe, probe
from .capture import CappedStream
from .identity import HostIdentity, host_identity
from .limits import SandboxLimits, SandboxResult
from .portal import Portal

SAMPLE_INTERVAL = 0.1
HEARTBEAT_INTERVAL = 1.0
# How long bwrap gets to exit after its pid 1 was killed, and the pipes to drain after that.
EXIT_GRACE = 1.0

Heartbeat = Callable[[], None]


async def run_in_sandbox(command: str, workspace: Path, limits: SandboxLimits, *,
                         heartbeat: Heartbeat | None = None) -> SandboxResult:
    """Run ``bash -c command`` in a sandbox whose only host path is ``workspace`` (at
    ``/workspace``, its working directory), within ``limits``.

    Returns once every process of the call has exited. If the awaiting task is cancelled, the
    sandbox is killed before the cancellation propagates; an exception from ``heartbeat`` does
    the same. Raises :class:`SandboxUnavailable` when :func:`probe` says this host cannot run the
    sandbox, or bwrap failed to set this one up.
    """
    availability = cached_probe() or await asyncio.to_thread(probe)
    if not availability.available or availability.engine is None:
        raise SandboxUnavailable(availability.reason)
    identity = host_identity()
    workspace_fd = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        before = await asyncio.to_thread(quota.measure_and_close, os.dup(workspace_fd), adopt=identity)
        call = _Call(availability.engine, command, workspace_fd, limits, quota.QuotaBudget(limits.workspace_quota_bytes,
                                                                                          before), identity, heartbeat)
        return await call.run()
    finally:
        os.close(workspace_fd)


class _Call:
    def __init__(self, engine: str, command: str, workspace_fd: int, limits: SandboxLimits,
                 budget: quota.QuotaBudget, identity: HostIdentity | None, heartbeat: Heartbeat | None) -> None:
        self._engine = engine
        self._command = command
        self._workspace_fd = workspace_fd
        self._limits = limits
        self._budget = budget
        self._identity = identity
        self._heartbeat = heartbeat
        self._stdout = CappedStream(limits.output_max_bytes)
        self._stderr = CappedStream(limits.output_max_bytes)
        self._bwrap: spawn.Started | None = None
        self._reaper_pid: int | None = None
        self._reaper_pidfd: int | None = None
        self._status_buffer = b""
        self._status_exit_code: int | None = None
        self._started = False
        self._stopped_for: str | None = None
        self._first_limit: str | None = None
        self._deleted_workspace_bytes = 0
        # Until a sample says otherwise: a command starting up is busy.
        self._busy = True
        self._cpu_seconds = 0.0

    async def run(self) -> SandboxResult:
        loop = asyncio.get_running_loop()
        limits = self._limits
        portal = Portal(self._engine) if self._identity is not None else None
        readers: list[_PipeReader] = []
        watcher: asyncio.Task[None] | None = None
        with launch.prepare(self._engine, workspace_fd=self._workspace_fd, portal=portal, command=self._command,
                            limits=limits, file_size_bytes=self._budget.file_size_limit(limits.file_size_bytes)) as plan:
            pending = spawn.start(plan.argv, launch.spawn_options(self._identity, plan), portal=portal,
                                  workspace_fd=self._workspace_fd)
            try:
                bwrap = await asyncio.shield(asyncio.wrap_future(pending))
            except asyncio.CancelledError:
                pending.add_done_callback(_kill_when_started)
                raise
            except (OSError, subprocess.SubprocessError) as error:
                raise SandboxUnavailable(f"bwrap could not be started: {error}") from error
            finally:
                plan.close_child_fds()
            started_at = time.monotonic()
            self._bwrap = bwrap
            exited = asyncio.wrap_future(bwrap.exit_status)
            try:
                for fd, on_data in ((plan.stdout_fd, self._stdout.feed), (plan.stderr_fd, self._stderr.feed),
                                    (plan.status_fd, self._on_status), (plan.started_fd, self._on_started)):
                    reader = _PipeReader(on_data, loop)
                    await loop.connect_read_pipe(lambda reader=reader: reader,
                                                 os.fdopen(plan.release(fd), "rb", buffering=0))
                    readers.append(reader)
                watcher = asyncio.create_task(quota_watch.watch(
                    self._workspace_fd, self._budget, held_deleted_bytes=lambda: self._deleted_workspace_bytes,
                    busy=lambda: self._busy, on_exceeded=lambda: self._stop("quota")))
                await self._supervise(exited, started_at)
            finally:
                if not exited.done():
                    # Cancelled, or the heartbeat raised: the sandbox must not outlive the call.
                    self._kill()
                if watcher is not None:
                    watcher.cancel()
                try:
                    await self._reap(exited)
                    if watcher is not None:
                        await asyncio.gather(watcher, return_exceptions=True)
                    # The pipes' writers are gone with the sandbox; what is still buffered is read.
                    await asyncio.wait([reader.closed for reader in readers], timeout=EXIT_GRACE)
                finally:
                    # Reached even if a second cancellation interrupts the waits above; the
                    # SIGKILL is already sent by then.
                    for reader in readers:
                        reader.close()
                    self._close_pidfds()
        duration = time.monotonic() - started_at
        return await self._result(exited.result() if exited.done() else None, duration)

    async def _supervise(self, exited: asyncio.Future[int], started_at: float) -> None:
        deadline = started_at + self._limits.timeout_seconds
        next_heartbeat = started_at + HEARTBEAT_INTERVAL
        while not exited.done():
            now = time.monotonic()
            if now >= deadline:
                self._stop("timeout")
                break
            if self._heartbeat is not None and now >= next_heartbeat:
                self._heartbeat()
                next_heartbeat = now + HEARTBEAT_INTERVAL
            await asyncio.wait([exited], timeout=min(SAMPLE_INTERVAL, deadline - now))
            if exited.done() or self._stopped_for is not None or self._reaper_pid is None:
                continue
            sample = await asyncio.to_thread(process_tree.sample, self._reaper_pid, self._budget.before.device)
            if sample is not None:
                self._check(sample)

    def _check(self, sample: process_tree.TreeSample) -> None:
        limits = self._limits
        self._deleted_workspace_bytes = sample.deleted_workspace_bytes
        self._busy = sample.cpu_seconds > self._cpu_seconds
        self._cpu_seconds = sample.cpu_seconds
        if sample.tasks >= limits.max_processes:
            self._note_limit("processes")
        if sample.tasks > limits.max_processes + 1:
            # More than RLIMIT_NPROC lets through: the kernel is not enforcing it here.
            self._stop("processes")
        elif sample.memory_bytes > limits.memory_bytes:
            self._stop("memory")
        elif sample.cpu_seconds > limits.cpu_seconds:
            self._stop("cpu")

    def _note_limit(self, limit: str) -> None:
        if self._first_limit is None:
            self._first_limit = limit

    def _stop(self, reason: str) -> None:
        if self._stopped_for is not None:
            return
        self._stopped_for = reason
        self._kill()

    def _kill(self) -> None:
        """SIGKILL to the sandbox's pid 1 ends its PID namespace, and the kernel kills every
        process in it, however detached. Until bwrap has reported that pid, bwrap itself is
        killed, and --die-with-parent takes its pid 1 along."""
        target = self._reaper_pidfd if self._reaper_pidfd is not None else self._bwrap_pidfd()
        if target is not None:
            _send_kill(target)

    def _bwrap_pidfd(self) -> int | None:
        return self._bwrap.pidfd if self._bwrap is not None else None

    async def _reap(self, exited: asyncio.Future[int]) -> None:
        """Wait until bwrap and the sandbox's pid 1 have exited; the PID namespace is empty once
        its pid 1 is gone, since the kernel reaps the namespace before that exit completes."""
        await asyncio.wait([exited], timeout=EXIT_GRACE)
        bwrap_pidfd = self._bwrap_pidfd()
        if not exited.done() and bwrap_pidfd is not None:
            _send_kill(bwrap_pidfd)
            await asyncio.wait([exited], timeout=EXIT_GRACE)
        if self._reaper_pidfd is not None:
            await _wait_readable(self._reaper_pidfd, EXIT_GRACE)

    def _on_status(self, data: bytes) -> None:
        # bwrap writes one JSON object per line: first the pid of the sandbox's pid 1 and its
        # namespaces, at the end the command's exit code.
        self._status_buffer += data
        *lines, self._status_buffer = self._status_buffer.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                status = json.loads(line)
            except ValueError:
                continue
            if "child-pid" in status and self._reaper_pid is None:
                self._adopt_reaper(int(status["child-pid"]))
            if "exit-code" in status:
                self._status_exit_code = int(status["exit-code"])

    def _adopt_reaper(self, pid: int) -> None:
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return
        # The pidfd pins the process; checking its parent afterwards proves it is bwrap's child
        # and not a reuse of the number.
        try:
            is_ours = self._bwrap is not None and psutil.Process(pid).ppid() == self._bwrap.pid
        except psutil.Error:
            is_ours = False
        if not is_ours:
            os.close(pidfd)
            return
        self._reaper_pid = pid
        self._reaper_pidfd = pidfd
        if self._stopped_for is not None:
            self._kill()

    def _on_started(self, data: bytes) -> None:
        if data:
            self._started = True

    def _close_pidfds(self) -> None:
        if self._reaper_pidfd is not None:
            os.close(self._reaper_pidfd)
            self._reaper_pidfd = None
        if self._bwrap is not None:
            os.close(self._bwrap.pidfd)

    async def _result(self, bwrap_status: int | None, duration: float) -> SandboxResult:
        stdout, stdout_cut = self._stdout.result()
        stderr, stderr_cut = self._stderr.result()
        if not self._started and self._stopped_for is None:
            raise SandboxUnavailable(f"bwrap could not set up the sandbox: {stderr.strip() or 'no message'}")
        after = await asyncio.to_thread(quota.measure_and_close, os.dup(self._workspace_fd))
        quota_exceeded = self._stopped_for == "quota" or self._budget.exhausted(after)
        exit_code = None
        if self._stopped_for is None:
            exit_code = self._status_exit_code
            if exit_code is None and bwrap_status is not None:
                # bwrap itself was ended by a signal (say the OOM killer): the shell convention.
                exit_code = 128 - bwrap_status if bwrap_status < 0 else bwrap_status
        if quota_exceeded:
            self._note_limit("quota")
        if exit_code == 128 + signal.SIGXFSZ:
            self._note_limit("file_size")
        elif exit_code == 128 + signal.SIGXCPU:
            self._note_limit("cpu")
        timed_out = self._stopped_for == "timeout"
        stopped_by_budget = self._stopped_for if self._stopped_for != "timeout" else None
        limit_hit = stopped_by_budget or self._first_limit or ("timeout" if timed_out else None)
        return SandboxResult(exit_code=exit_code, stdout=stdout, stderr=stderr, stdout_cut_bytes=stdout_cut,
                             stderr_cut_bytes=stderr_cut, timed_out=timed_out, quota_exceeded=quota_exceeded,
                             limit_hit=limit_hit, duration_seconds=duration)


class _PipeReader(asyncio.Protocol):
    """Hands every chunk over as it arrives: the pipes are drained while the command runs."""

    def __init__(self, on_data: Callable[[bytes], None], loop: asyncio.AbstractEventLoop) -> None:
        self._on_data = on_data
        self._transport: asyncio.BaseTransport | None = None
        self.closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._on_data(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def _send_kill(pidfd: int) -> None:
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _kill_when_started(pending: Future[spawn.Started]) -> None:
    """The call was cancelled while bwrap was being started: kill it once it is."""
    if pending.exception() is None:
        started = pending.result()
        _send_kill(started.pidfd)
        os.close(started.pidfd)


async def _wait_readable(fd: int, timeout: float) -> None:
    """A pidfd turns readable when its process has exited."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await asyncio.wait([ready], timeout=timeout)
    finally:
        loop.remove_reader(fd)
