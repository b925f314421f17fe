"""`make dev`'s launcher always cleans up: a signal sent twice (as make relays the one its
process group gets) does not cut its shutdown short, a start that finds the servers a SIGKILLed
launcher left running stops them and starts afresh, and a port another program holds is named
with the variable that moves it."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from api.auth import issue_token
from local.stack.process import free_port

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_FROM_THE_TEST_RUN = ("DATABASE_URL", "REDIS_URL", "TEMPORAL_ADDRESS", "STRIPE_API_KEY", "MODEL_BASE_URL",
                              "OPENROUTER_API_KEY", "WORKSPACE_DIR", "OFFLINE_MODEL_URL")
SECRET = "launcher-test-secret-0123456789abcdef"
# What one launcher runs with WORKER_PROCESSES=1, as its run record names them: each can be left over.
CHILDREN = ("postgres", "redis", "temporal", "offline-model", "offline-stripe", "worker-1", "api")


def launch(data: Path, ports: dict[str, int]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_FROM_THE_TEST_RUN}
    env.update(DEV_DATA_DIR=str(data), WORKER_PROCESSES="1", API_PORT=str(ports["api"]), JWT_SECRET=SECRET,
               OFFLINE_MODEL_FIRST_TOKEN_DELAY_MS="0", OFFLINE_MODEL_ANSWER_WORDS="5",
               WORKER_METRICS_PORT=str(ports["worker_metrics"]),
               **{f"DEV_{name.upper()}_PORT": str(port) for name, port in ports.items()
                  if name not in ("api", "worker_metrics")})
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
    """Every live process of a launcher on `data`: the servers name it or work in it (Redis rewrites its
    command line and environment, but keeps its folder), the others inherit DEV_DATA_DIR."""
    found = []
    for process in psutil.process_iter(["cmdline", "status", "cwd"]):
        try:
            if process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if (str(data) in " ".join(process.info["cmdline"] or []) or (process.info["cwd"] or "").startswith(str(data))
                    or process.environ().get("DEV_DATA_DIR") == str(data)):
                found.append(process)
        except psutil.Error:
            pass
    return found


def kill_all(data: Path) -> None:
    """Whatever a failed test left: nothing of it outlives the test."""
    for process in ours(data):
        try:
            process.kill()
        except psutil.Error:
            pass


def serves_a_turn(api_port: int) -> None:
    headers = {"Authorization": f"Bearer {issue_token(SECRET, 'launcher-test')}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers=headers, timeout=60) as client:
        created = client.post("/api/chat/sessions", json={})
        assert created.status_code == 201, created.text
        turn = client.post(f"/api/chat/sessions/{created.json()['id']}/turns", json={"message": "hi", "wait_seconds": 45})
        assert turn.status_code == 200 and turn.json()["status"] == "completed", turn.text


@pytest.mark.timeout(360)
def test_a_double_signal_stops_everything_and_what_a_killed_launcher_left_is_taken_over(tmp_path):
    data = tmp_path / "data"
    ports = {name: free_port() for name in ("api", "postgres", "redis", "temporal", "temporal_ui", "offline_model",
                                             "offline_stripe", "worker_metrics")}
    try:
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

        # A crashed launcher: SIGKILL leaves every child (each in its own process group) running.
        second = launch(data, ports)
        wait_ready(second, ports["api"])
        leftover = psutil.Process(second.pid).children(recursive=False)
        assert len(leftover) == len(CHILDREN)
        os.kill(second.pid, signal.SIGKILL)
        second.wait(10)
        assert all(p.is_running() for p in leftover)

        third = launch(data, ports)
        try:
            # The leftover API answers until the new launcher has stopped it: only then is it the new one.
            psutil.wait_procs(leftover, timeout=60)
            assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in leftover)
            wait_ready(third, ports["api"])
            serves_a_turn(ports["api"])
            # The worker's metrics and the API's, the SDK's among them; the playground is on.
            worker_metrics = httpx.get(f"http://127.0.0.1:{ports['worker_metrics']}/metrics", timeout=5).text
            assert "copilot_model_rounds_total" in worker_metrics and "temporal_workflow_completed" in worker_metrics
            assert "copilot_http_requests_total" in httpx.get(f"http://127.0.0.1:{ports['api']}/metrics", timeout=5).text
            assert httpx.get(f"http://127.0.0.1:{ports['api']}/playground", timeout=5).status_code == 200
            # A second launcher on the same data while one runs is refused, and touches nothing.
            beside = launch(data, ports)
            assert beside.wait(30) == 1
            assert f"a launcher (pid {third.pid}) is already running" in beside.stdout.read()
            assert httpx.get(f"http://127.0.0.1:{ports['api']}/health", timeout=5).status_code == 200
        finally:
            os.killpg(third.pid, signal.SIGTERM)
            third.wait(90)
        output = third.stdout.read()
        assert f"http://127.0.0.1:{ports['api']}/playground#token=ey" in output, output
        # Logs a person reads: key=value lines, each with the ids (the API's access lines among them).
        for log in ("api.log", "worker.log"):
            lines = [line for line in (data / "logs" / log).read_text().splitlines() if " message=" in line]
            assert lines and all("request_id=" in line and "trace_id=" in line for line in lines), log
        api_lines = (data / "logs" / "api.log").read_text()
        assert re.search(r'uvicorn.access message=".*POST /api/chat/sessions/[^ ]+/turns', api_lines), api_lines[-2000:]
        stops = [line.split()[1] for line in output.splitlines() if "left running by a launcher that was killed" in line]
        assert stops == list(reversed(CHILDREN)), output  # newest first: clients before their servers
        time.sleep(1)
        assert not ours(data), [p.info["cmdline"] for p in ours(data)]

        # A port another program holds: named, with the variable that moves ours; nothing is left running.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            holder.bind(("127.0.0.1", ports["redis"]))
            holder.listen()
            refused = launch(data, ports)
            assert refused.wait(60) == 1
        output = refused.stdout.read()
        assert f"port {ports['redis']} (Redis) is already in use by another program (pid {os.getpid()}" in output
        assert "set DEV_REDIS_PORT to a free port" in output and "Traceback" not in output, output
        time.sleep(1)
        assert not ours(data), [p.info["cmdline"] for p in ours(data)]
    finally:
        kill_all(data)
