"""bash_exec through the real tool activity and the real sandbox, tried as a hostile or
prompt-injected user would: each attempt fails, and nothing outside the session changes.
(tests/integration/test_sandbox.py tries the engine itself harder.)"""

import asyncio
import os
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from sandbox import probe
from tests.support.tool_harness import ToolHarness

if not probe().available:
    pytest.skip(f"the sandbox cannot run on this host: {probe().reason}", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 ** 2


@pytest.fixture
def harness(settings) -> ToolHarness:
    return ToolHarness(settings.model_copy(update={
        "bash_memory_bytes": 256 * MiB, "bash_max_processes": 32, "bash_cpu_seconds": 10,
        "workspace_quota_bytes": 8 * MiB, "bash_file_size_bytes": 16 * MiB}))


async def bash(harness: ToolHarness, session: tuple[str, str], command: str, timeout: int = 20) -> dict:
    result = await harness.run(harness.request(*session, "bash_exec", {"command": command, "timeout": timeout}))
    assert result.error is None, result.error
    return result.output


async def write(harness: ToolHarness, session: tuple[str, str], name: str, content: str) -> dict:
    result = await harness.run(harness.request(*session, "write_workspace_file", {"name": name, "content": content}))
    assert result.error is None, result.error
    return result.output


@pytest.fixture
async def neighbours(harness):
    """My session, another session of mine, and another user's session, each with a marker file."""
    mine = await harness.new_session()
    my_other = await harness.new_session(user_id=mine[1])
    stranger = await harness.new_session()
    secrets = {}
    for name, session in (("my_other", my_other), ("stranger", stranger)):
        secrets[name] = f"secret-{uuid.uuid4().hex}"
        await write(harness, session, "marker.txt", secrets[name])
    return mine, my_other, stranger, secrets


async def test_nothing_of_the_host_or_other_sessions_is_readable(harness, neighbours, settings, monkeypatch):
    mine, my_other, stranger, secrets = neighbours
    monkeypatch.setenv("WORKER_ONLY_SECRET", "worker-env-secret-value")
    folder = harness.services.storage.session_folder
    attempts = "; ".join([
        "cat /proc/1/environ", f"cat /proc/{os.getpid()}/environ", f"cat {ROOT}/.env", f"ls {ROOT}",
        f"cat {ROOT}/pyproject.toml", f"ls {ROOT}/.data", f"cat {folder(my_other[0])}/marker.txt",
        f"cat {folder(stranger[0])}/marker.txt", "ls -a /workspace/..", "cat ../*/marker.txt",
        "cd .. && ls -R", "find / -name marker.txt 2>/dev/null", "cat /etc/shadow", "ls /root /home",
    ])
    output = await bash(harness, mine, attempts)
    seen = output["stdout"] + output["stderr"]
    for secret in [*secrets.values(), "worker-env-secret-value", settings.database_url, "durable-copilot"]:
        assert secret not in seen
    assert "worker.py" not in seen and "[tool.setuptools]" not in seen
    # Nothing outside the session changed: the neighbours' files are as they were.
    for session, name in ((my_other, "my_other"), (stranger, "stranger")):
        assert (folder(session[0]) / "marker.txt").read_text() == secrets[name]


async def test_no_service_on_loopback_is_reachable(harness, settings, stack, api_url):
    session = await harness.new_session()
    listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    own_port = listener.sockets[0].getsockname()[1]
    ports = {"postgres": urlsplit(settings.database_url).port, "redis": urlsplit(settings.redis_url).port,
             "temporal": int(settings.temporal_address.rsplit(":", 1)[1]), "api": urlsplit(api_url).port,
             "listener": own_port}
    probes = "; ".join(f"(timeout 2 bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}' 2>/dev/null && echo {name}:open "
                       f"|| echo {name}:closed)" for name, port in ports.items())
    try:
        output = await bash(harness, session, probes + "; cat /proc/net/tcp | wc -l")
    finally:
        listener.close()
    assert all(f"{name}:closed" in output["stdout"] for name in ports), output["stdout"]


async def test_signals_cannot_reach_the_worker(harness):
    session = await harness.new_session()
    bystander = await asyncio.create_subprocess_exec("sleep", "60")
    try:
        await bash(harness, session, "kill -9 $PPID; kill -9 -1; kill -9 1; true")
        await bash(harness, session, f"kill -9 {os.getpid()} {bystander.pid}; true")
        assert psutil.pid_exists(os.getpid()) and bystander.returncode is None
        again = await bash(harness, session, "echo still serving")
        assert again["stdout"].strip() == "still serving"
    finally:
        bystander.kill()
        await bystander.wait()


async def test_a_fork_bomb_and_a_memory_hog_end_within_their_limits(harness):
    session = await harness.new_session()
    started = time.perf_counter()
    bomb = await bash(harness, session, ":(){ :|:& };:; wait; sleep 2", timeout=5)
    # It ends within the call's limits (whether the watchdog saw the process cap before bash gave
    # up forking depends on timing), and nothing of it is left.
    assert time.perf_counter() - started < 8 and bomb.get("limit") in (None, "processes", "timeout", "cpu", "memory")
    assert not [p for p in psutil.process_iter(["cmdline"]) if "wait; sleep 2" in " ".join(p.info["cmdline"] or [])]
    hog = await bash(harness, session, "python3 -c 'a = bytearray(1024**3); print(len(a))'")
    assert "1073741824" not in hog["stdout"] and (hog["exit_code"] != 0 or hog.get("limit") == "memory")
    assert (await bash(harness, session, "echo fine"))["stdout"] == "fine\n"


async def test_writing_past_the_quota_fails_and_the_quota_holds(harness):
    session = await harness.new_session()
    output = await bash(harness, session, "head -c 20000000 /dev/zero > big; echo status $?")
    folder = harness.services.storage.session_folder(session[0])
    assert output["limit"] in ("quota", "file_size") and "status 0" not in output["stdout"]
    assert harness.services.storage.session_usage(session[0]) <= 8 * MiB
    refused = await harness.run(harness.request(*session, "write_workspace_file",
                                                {"name": "more.txt", "content": "x" * (9 * MiB // 8)}))
    assert folder.exists() and (refused.error is None or refused.error.startswith(("quota_exceeded", "too_large")))


async def test_huge_output_is_capped_while_it_is_read(harness):
    session = await harness.new_session()
    worker = psutil.Process()
    before = worker.memory_info().rss
    output = await bash(harness, session, "yes | head -c 500000000", timeout=60)
    growth = worker.memory_info().rss - before
    assert output["stdout_cut_bytes"] > 499_000_000 and len(output["stdout"]) < 30_000
    assert growth < 50 * MiB, f"the worker grew by {growth / MiB:.0f} MiB"


async def test_a_detached_child_dies_with_the_call(harness):
    session = await harness.new_session()
    nap = f"600.{uuid.uuid4().int % 10 ** 8:08d}"
    started = time.perf_counter()
    output = await bash(harness, session, f"setsid sleep {nap} & nohup setsid bash -c 'sleep {nap}' & sleep 30",
                        timeout=2)
    assert output["timed_out"] is True and time.perf_counter() - started < 3.5
    await asyncio.sleep(0.3)
    left = [p for p in psutil.process_iter(["cmdline"]) if nap in " ".join(p.info["cmdline"] or [])]
    assert not left


async def test_a_saved_script_runs_and_the_next_call_sees_the_files(harness):
    session = await harness.new_session()
    await write(harness, session, "script.py", "open('out.txt', 'w').write(str(6 * 7))\nprint('wrote it')\n")
    ran = await bash(harness, session, "python3 script.py && bash -c 'echo made by bash > notes.txt'")
    assert ran["stdout"] == "wrote it\n" and ran["exit_code"] == 0
    listed = await bash(harness, session, "cat out.txt; echo; ls")
    assert listed["stdout"].split() == ["42", "notes.txt", "out.txt", "script.py"]
    read = await harness.run(harness.request(*session, "read_workspace_file", {"file": "notes.txt"}))
    assert read.output["content"] == "made by bash\n"


async def test_a_planted_link_never_leads_the_worker_out(harness):
    """The sandbox can leave a symlink under a name the worker later reads or writes."""
    session = await harness.new_session()
    outside = ROOT / "pyproject.toml"
    await bash(harness, session, f"ln -s {outside} notes.txt; ln -s {outside} saved.txt; mkfifo pipe.txt")
    read = await harness.run(harness.request(*session, "read_workspace_file", {"file": "notes.txt"}))
    assert read.error.startswith("not_found")
    assert (await harness.run(harness.request(*session, "read_workspace_file", {"file": "pipe.txt"}))).error
    before = outside.read_text()
    await write(harness, session, "saved.txt", "overwritten?")
    assert outside.read_text() == before
    assert (harness.services.storage.session_folder(session[0]) / "saved.txt").read_text() == "overwritten?"
