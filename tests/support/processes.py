"""A worker as its own process, for the tests that kill one: `python worker.py`, or with the
tests' extra tools `python -m tests.support.test_worker`."""

import sys
from pathlib import Path

from local.stack.process import ChildProcess

ROOT = Path(__file__).resolve().parents[2]


def start_worker(settings, log_path: Path, extra_tools: bool = False) -> ChildProcess:
    env = {
        "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
        "TEMPORAL_ADDRESS": settings.temporal_address, "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "MODEL_BASE_URL": settings.model_base_url, "MODEL_API_KEY": settings.model_api_key,
        "FAST_MODEL": settings.fast_model, "JWT_SECRET": settings.jwt_secret,
        "WORKSPACE_DIR": settings.workspace_dir,
        "TOOL_HEARTBEAT_TIMEOUT_SECONDS": str(settings.tool_heartbeat_timeout_seconds),
        "WORKER_METRICS_PORT": "0",  # several at once, beside other test runs: no port to share
    }
    argv = [sys.executable, "-m", "tests.support.test_worker"] if extra_tools else [sys.executable, "worker.py"]
    return ChildProcess("worker", argv, log_path, env=env, cwd=ROOT)
