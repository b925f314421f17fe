"""What a killed launcher leaves behind, and ports that are not ours.

Every server the launcher starts runs in its own process group, so a launcher that is SIGKILLed
(or whose terminal is closed) cannot take its children along: they keep running and hold their
ports and data. The launcher writes one pid file per child under `<data>/run/`; the next start
on the same data stops every recorded process that is still alive, newest first (the API before
the workers, the workers before the servers they use), then starts everything afresh on the
same data. It stops rather than reuses them: a leftover runs the code and the settings of the
run that was killed, and only a fresh start shows what the current ones do.
"""

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from local.stack.process import port_open

# Seconds a leftover gets to exit after its stop signal before its whole group is SIGKILLed.
STOP_TIMEOUT_SECONDS = 20.0


class LaunchRefused(RuntimeError):
    """The launcher cannot start: the message says why and what to do."""


@dataclass(frozen=True)
class Recorded:
    name: str
    pid: int
    started: float  # the process's start time: a pid the system has since given to another process is not ours
    stop_signal: int
    order: int  # when the launcher started it, among its children (start times are as coarse as a clock tick)


def _running(process: psutil.Process) -> bool:
    # A child of a killed launcher is reparented; where nothing reaps it, it stays a zombie once it exits.
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _alive(pid: int, started: float) -> psutil.Process | None:
    try:
        process = psutil.Process(pid)
        if abs(process.create_time() - started) < 0.01 and _running(process):
            return process
    except psutil.Error:
        pass
    return None


def _start_time(pid: int) -> float:
    return psutil.Process(pid).create_time()


class RunRecord:
    """The pid files of one launcher's children, in `folder`, plus the launcher's own."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._written: set[Path] = set()  # only these are ours to remove

    def _file(self, name: str) -> Path:
        return self.folder / f"{name.replace(' ', '-')}.pid"

    def claim(self, data_dir: Path) -> None:
        """Refuses to start beside a launcher that is still running on the same data."""
        self.folder.mkdir(parents=True, exist_ok=True)
        other = self._read(self._file("launcher"))
        if other is not None and other.pid != os.getpid() and _alive(other.pid, other.started):
            raise LaunchRefused(f"a launcher (pid {other.pid}) is already running on {data_dir}: stop it "
                                f"(Ctrl-C in its terminal, or kill {other.pid}), or set DEV_DATA_DIR (and the "
                                "DEV_*_PORT variables) to run a second stack beside it")
        self.add("launcher", os.getpid(), signal.SIGTERM)

    def add(self, name: str, pid: int, stop_signal: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        pid_file = self._file(name)
        pid_file.write_text(f"{pid} {_start_time(pid)!r} {int(stop_signal)} {len(self._written)}\n")
        self._written.add(pid_file)

    def clear(self) -> None:
        """Once this launcher has stopped its children: nothing of it is left to find."""
        for pid_file in self._written:
            pid_file.unlink(missing_ok=True)
        self._written.clear()

    def _read(self, pid_file: Path) -> Recorded | None:
        try:
            pid, started, stop_signal, order = pid_file.read_text().split()
            return Recorded(pid_file.stem, int(pid), float(started), int(stop_signal), int(order))
        except (OSError, ValueError):
            return None

    def stop_leftovers(self) -> None:
        """Stops every recorded child of an earlier launcher that is still running, newest first."""
        found = []
        for pid_file in self.folder.glob("*.pid"):
            recorded = self._read(pid_file)
            if recorded is not None and recorded.name == "launcher":
                continue
            process = None if recorded is None else _alive(recorded.pid, recorded.started)
            if process is None:
                pid_file.unlink(missing_ok=True)
            else:
                found.append((pid_file, recorded, process))
        for pid_file, recorded, process in sorted(found, key=lambda entry: entry[1].order, reverse=True):
            print(f"stopping {recorded.name} (pid {recorded.pid}), left running by a launcher that was killed",
                  flush=True)
            _stop_group(process, recorded.stop_signal)
            # Only now: a launcher interrupted while it stops them leaves the rest recorded for the next start.
            pid_file.unlink(missing_ok=True)


def _stop_group(process: psutil.Process, stop_signal: int) -> None:
    try:
        group = os.getpgid(process.pid)
    except ProcessLookupError:
        return
    if group != process.pid:  # not the leader of its own group: signal it alone
        group = None
    _signal(process.pid, group, stop_signal)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while _running(process) and time.monotonic() < deadline:
        time.sleep(0.1)
    # Whatever of its group is still there (it ignored the signal, or a grandchild outlived it).
    _signal(process.pid, group, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while _running(process) and time.monotonic() < deadline:
        time.sleep(0.1)


def _signal(pid: int, group: int | None, sig: int) -> None:
    try:
        if group is not None:
            os.killpg(group, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _holder(port: int) -> str:
    """Who listens on `port`, where this user may see it."""
    try:
        for connection in psutil.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port:
                if connection.pid:
                    return f" (pid {connection.pid}, {psutil.Process(connection.pid).name()})"
    except psutil.Error:
        pass
    return ""


def require_free_port(port: int, what: str, variable: str) -> None:
    """A port another program holds: say which, and how to move ours, before anything is started on it."""
    if port_open(port):
        raise LaunchRefused(f"port {port} ({what}) is already in use by another program{_holder(port)}: stop it, "
                            f"or set {variable} to a free port to run ours elsewhere")
