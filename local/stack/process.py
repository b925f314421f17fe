"""Start, wait for and stop one child server process."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Sequence


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_until(ready: Callable[[], bool], what: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before it was ready")
        time.sleep(0.1)
    raise TimeoutError(f"{what} was not ready after {timeout:.0f}s")


class ChildProcess:
    """A server process in its own process group, logging to a file."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, env: dict | None = None, user: str | None = None,
                 cwd: Path | None = None):
        self.name = name
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")
        self.log_path = log_path
        self.process = subprocess.Popen(
            list(argv), stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, user=user, cwd=cwd, start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
        if self.alive():
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
            except ProcessLookupError:
                pass
        self._log.close()

    def kill(self) -> None:
        """SIGKILL the whole group: used to prove that work survives a crashed process."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        self._log.close()


class EmbeddedServer:
    """One server process of the dev stack; subclasses start `self.child`."""

    name = "server"
    stop_signal: int = signal.SIGTERM  # what `stop` sends, and what stops one a killed launcher left running

    def __init__(self, data_dir: Path, port: int, durable: bool = True):
        self.data_dir = data_dir.resolve()
        self.port = port
        # Throwaway test servers skip fsync and snapshots: their data dies with the test run.
        self.durable = durable
        self.child: ChildProcess | None = None

    def alive(self) -> bool:
        return self.child is not None and self.child.alive()

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
