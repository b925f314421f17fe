"""The system under test and the direct baseline, started once per benchmark run.

Everything listens on free loopback ports and lives in a temporary folder: PostgreSQL, Redis and
the Temporal dev server from the project's wheels (no downloads), the benchmark model server,
the direct baseline, the worker and the API. The worker and the API run as separate processes
(`python -m worker`, `uvicorn api.main:app`), as they are deployed, so each one's CPU and memory
can be measured on its own and neither steals the other's event loop.
"""

import asyncio
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Optional

from api.auth import issue_token
from bench import sse_client
from bench.sse_client import StreamResult
from database import upgrade_schema
from local.stack.postgres import EmbeddedPostgres
from local.stack.process import ChildProcess, free_port, port_open, wait_until
from local.stack.redis import EmbeddedRedis
from local.stack.temporal import TemporalDevServer

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
JWT_SECRET = "bench-secret-0123456789abcdef-0123456789"
MODEL = "bench/model"  # not an Anthropic route: no reasoning, the first content is text on both paths


class BenchStack:
    def __init__(self, keep: bool = False, worker_activity_slots: Optional[int] = None):
        self.root = Path(tempfile.mkdtemp(prefix="copilot-bench-"))
        self.keep = keep
        self.worker_activity_slots = worker_activity_slots  # None: the worker exactly as deployed
        self.task_queue = f"bench-{uuid.uuid4().hex[:8]}"
        self.servers: list = []
        self.children: dict[str, ChildProcess] = {}
        self.api_port = self.baseline_port = self.model_port = 0
        self.database_url = self.redis_url = self.temporal_address = ""
        self._temporal_client = None

    # -- lifecycle -------------------------------------------------------------------------

    def _child(self, name: str, argv: list[str], env: dict[str, str], port: Optional[int]) -> None:
        child = ChildProcess(name, argv, self.root / "logs" / f"{name}.log", env=env, cwd=ROOT)
        self.children[name] = child
        if port is not None:
            wait_until(lambda: port_open(port), name, 60, child.process)

    def _uvicorn(self, name: str, app: str, port: int, env: dict[str, str]) -> None:
        self._child(name, [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port),
                           "--log-level", "warning", "--no-access-log"], env, port)

    def system_env(self) -> dict[str, str]:
        """The API's and the worker's configuration; everything else keeps its default."""
        return {
            "DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url,
            "TEMPORAL_ADDRESS": self.temporal_address, "TEMPORAL_NAMESPACE": "default",
            "TEMPORAL_TASK_QUEUE": self.task_queue, "JWT_SECRET": JWT_SECRET,
            "OPENROUTER_API_KEY": "", "MODEL_BASE_URL": self.model_url, "MODEL_API_KEY": "bench",
            "FAST_MODEL": MODEL, "THINKING_MODEL": MODEL,
            # Room for the 20-tool-round benchmark (the default stops a turn at 10 rounds).
            "MAX_ROUNDS": "25",
            "WORKSPACE_DIR": str(self.root / "workspace"),
        }

    def start(self) -> "BenchStack":
        try:
            postgres = EmbeddedPostgres(self.root / "pg", free_port(), durable=False).start(
                self.root / "logs" / "postgres.log")
            self.servers.append(postgres)
            redis = EmbeddedRedis(self.root / "redis", free_port(), durable=False).start(self.root / "logs" / "redis.log")
            self.servers.append(redis)
            temporal = TemporalDevServer(free_port(), None, None).start(self.root / "logs" / "temporal.log")
            self.servers.append(temporal)
            self.database_url, self.redis_url, self.temporal_address = postgres.url, redis.url, temporal.address
            upgrade_schema(self.database_url)
            self.model_port, self.baseline_port, self.api_port = free_port(), free_port(), free_port()
            self._uvicorn("model", "bench.model_server:app", self.model_port, {})
            self._uvicorn("baseline", "bench.baseline:app", self.baseline_port,
                          {"BENCH_MODEL_URL": self.model_url, "BENCH_MODEL": MODEL})
            self.add_worker()
            self._uvicorn("api", "api.main:app", self.api_port, self.system_env())
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def workers(self) -> list[str]:
        return [name for name in self.children if name.startswith("worker")]

    def add_worker(self) -> str:
        """Starts one more worker process on the same task queue (scale-out); returns its label."""
        env = self.system_env()
        if self.worker_activity_slots is not None:
            env["WORKER_MAX_CONCURRENT_ACTIVITIES"] = str(self.worker_activity_slots)
        name = "worker" if not self.workers else f"worker {len(self.workers) + 1}"
        self._child(name, [sys.executable, "-m", "worker"], env, None)
        return name

    def stop(self) -> None:
        for child in reversed(list(self.children.values())):
            child.stop()
        for server in reversed(self.servers):
            server.stop()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "BenchStack":
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    def alive(self) -> list[str]:
        """Names of the processes that have died (empty when all run)."""
        return [name for name, child in self.children.items() if not child.alive()]

    @property
    def model_url(self) -> str:
        return f"http://{HOST}:{self.model_port}/v1"

    @property
    def pids(self) -> dict[str, int]:
        names = {"api": "API", "model": "model server", "baseline": "baseline", **{w: w for w in self.workers}}
        pids = {label: self.children[name].pid for name, label in names.items()}
        for server in self.servers:
            pids[server.name] = server.child.pid
        return pids

    # -- talking to the system -------------------------------------------------------------

    @staticmethod
    def headers_for(user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(JWT_SECRET, user_id)}"}

    async def api(self, method: str, path: str, body: Optional[dict] = None, headers: Optional[dict] = None,
                  timeout: float = 120.0, head_only: bool = False) -> StreamResult:
        return await sse_client.request(HOST, self.api_port, method, path, body, headers, timeout, head_only)

    async def new_session(self, user_id: Optional[str] = None, title: Optional[str] = "bench") -> tuple[str, dict[str, str]]:
        """A session of a fresh user (so per-user message rates and spend never interfere).

        It has a title, as every conversation has after its first message, so a message takes
        the path of a follow-up in a conversation, not the one-off path that also sets the title.
        """
        headers = self.headers_for(user_id or f"bench-{uuid.uuid4().hex[:12]}")
        created = await self.api("POST", "/api/chat/sessions", {"title": title} if title else {}, headers)
        if created.status != 201:
            raise RuntimeError(f"creating a session answered {created.status}: {created.body[:200]!r}")
        return created.json()["id"], headers

    async def system_turn(self, session_id: str, headers: dict, message: str, timeout: float = 120.0,
                          head_only: bool = False) -> StreamResult:
        """`POST .../stream`, read to `[DONE]` (or a 202 / error answer)."""
        return await self.api("POST", f"/api/chat/sessions/{session_id}/stream", {"message": message}, headers,
                              timeout, head_only)

    async def direct_turn(self, message: str, history: Optional[list[dict]] = None,
                          timeout: float = 120.0) -> StreamResult:
        return await sse_client.request(HOST, self.baseline_port, "POST", "/stream",
                                        {"message": message, "history": history or []}, None, timeout)

    async def wait_idle(self, session_ids: list[str], headers: dict[str, dict], timeout: float = 120.0) -> int:
        """Waits until none of these sessions has a running turn; returns how many still run."""
        pending = list(session_ids)
        gate = asyncio.Semaphore(20)

        async def state(session_id: str) -> StreamResult:
            async with gate:
                return await self.api("GET", f"/api/chat/sessions/{session_id}", None, headers[session_id])

        deadline = asyncio.get_running_loop().time() + timeout
        while pending and asyncio.get_running_loop().time() < deadline:
            states = await asyncio.gather(*(state(s) for s in pending))
            pending = [s for s, r in zip(pending, states) if r.status != 200 or r.json().get("active_turn")]
            if pending:
                await asyncio.sleep(0.5)
        return len(pending)

    async def temporal(self):
        """A Temporal client in the benchmark process (to read workflow histories)."""
        if self._temporal_client is None:
            from temporalio.client import Client
            self._temporal_client = await Client.connect(self.temporal_address)
        return self._temporal_client
