"""`make dev`'s launcher always cleans up: a signal sent twice (as make relays the one its
process group gets) does not cut its shutdown short, and a start that finds its own PostgreSQL
left over from a killed run stops it and starts afresh."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from local.stack.process import free_port

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_FROM_THE_TEST_RUN = ("DATABASE_URL", "REDIS_URL", "TEMPORAL_ADDRESS", "STRIPE_API_KEY", "MODEL_BASE_URL",
                              "OPENROUTER_API_KEY", "WORKSPACE_DIR", "OFFLINE_MODEL_URL")


def launch(data: Path, ports: dict[str, int]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_FROM_THE_TEST_RUN}
    env.update(DEV_DATA_DIR=str(data), WORKER_PROCESSES="1", API_PORT=str(ports["api"]),
               **{f"DEV_{name.upper()}_PORT": str(port) for name, port in ports.items() if name != "api"})
    return subprocess.Popen([sys.executable, "-m", "local.stack"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def wait_ready(process: subprocess.Popen, api_port: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            if httpx.get(f"http://127.0.0.1:{api_port}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("the stack did not come up")


def ours(data: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if str(data) in " ".join(process.info["cmdline"] or []):
                found.append(process)
        except psutil.Error:
            pass
    return found


def test_a_double_signal_stops_everything_and_a_leftover_postgres_is_taken_over(tmp_path):
    data = tmp_path / "data"
    ports = {name: free_port() for name in ("api", "postgres", "redis", "temporal", "temporal_ui", "offline_model",
                                             "offline_stripe")}
    first = launch(data, ports)
    try:
        wait_ready(first, ports["api"])
        os.killpg(first.pid, signal.SIGTERM)
        time.sleep(0.2)
        os.killpg(first.pid, signal.SIGTERM)  # the relayed second one, mid-shutdown
        assert first.wait(90) == 0
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    time.sleep(1)
    assert not ours(data), [p.info["cmdline"] for p in ours(data)]

    # A crashed launcher: PostgreSQL (its own process group) is left running on the data.
    second = launch(data, ports)
    wait_ready(second, ports["api"])
    leftover = [p for p in ours(data) if "postgres" in " ".join(p.info["cmdline"])]
    for process in psutil.Process(second.pid).children(recursive=False):
        if "postgres" not in " ".join(process.cmdline()):
            os.killpg(process.pid, signal.SIGKILL)
    os.kill(second.pid, signal.SIGKILL)
    second.wait(10)
    assert leftover and all(p.is_running() for p in leftover)

    third = launch(data, ports)
    try:
        wait_ready(third, ports["api"])
    finally:
        os.killpg(third.pid, signal.SIGTERM)
        third.wait(90)
    assert "stopping the PostgreSQL server left running" in third.stdout.read()
    time.sleep(1)
    assert not ours(data)
