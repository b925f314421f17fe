"""The sandbox engine against a hostile command: every escape attempt fails and leaves the host
as it was, every budget holds for the whole call, and ordinary work still works."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

import psutil
import pytest

from sandbox import SandboxLimits, SandboxResult, find_bwrap, probe, run_in_sandbox
from sandbox.identity import SANDBOX_UID, host_identity

AVAILABILITY = probe()
if not AVAILABILITY.available:
    pytest.skip(f"the sandbox cannot run on this host: {AVAILABILITY.reason}", allow_module_level=True)

pytestmark = pytest.mark.integration

MB = 1_000_000
MiB = 1024 ** 2
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sessions(tmp_path: Path) -> tuple[Path, Path, str]:
    """Two sibling session workspaces; the other one holds a secret."""
    root = tmp_path / "sessions"
    mine, other = root / "session-mine", root / "session-other"
    mine.mkdir(parents=True)
    other.mkdir()
    secret = f"other-session-secret-{uuid.uuid4().hex}"
    (other / "secret.txt").write_text(secret)
    return mine, other, secret


@pytest.fixture
def workspace(sessions: tuple[Path, Path, str]) -> Path:
    return sessions[0]


def limits(**overrides: object) -> SandboxLimits:
    values: dict[str, object] = {"timeout_seconds": 10.0, "cpu_seconds": 20, "workspace_quota_bytes": 100 * MB}
    values.update(overrides)
    return SandboxLimits(**values)  # type: ignore[arg-type]


async def run(command: str, workspace: Path, heartbeat: Callable[[], None] | None = None,
              **overrides: object) -> SandboxResult:
    return await run_in_sandbox(command, workspace, limits(**overrides), heartbeat=heartbeat)


def marker() -> str:
    """A token to find the call's processes by: it is in every command line of them."""
    return uuid.uuid4().hex[:12]


def processes_with(token: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if process.pid != os.getpid() and token in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


def _threads(process: psutil.Process) -> int:
    try:
        return process.num_threads()
    except psutil.Error:
        return 0


def unique_sleep() -> str:
    """``sleep 600.xxxx``: a sleeper that can be told apart from every other on the host."""
    return f"600.{uuid.uuid4().int % 10 ** 8:08d}"


def sleepers(seconds: str) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if (p.info["cmdline"] or [])[-1:] == [seconds]]


def disk_usage(path: Path) -> int:
    """Allocated bytes, measured independently of the engine."""
    total = os.lstat(path).st_blocks * 512
    for directory, names, files in os.walk(path):
        for name in names + files:
            total += os.lstat(os.path.join(directory, name)).st_blocks * 512
    return total


def output(result: SandboxResult) -> str:
    return result.stdout + result.stderr


# --- identity, namespaces, environment -----------------------------------------------------


async def test_runs_as_an_unprivileged_user_without_capabilities_or_network(workspace: Path) -> None:
    result = await run("id -u; id -g; hostname; grep CapEff /proc/self/status; ls /; "
                       "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; pwd", workspace)
    lines = result.stdout.split()
    assert result.exit_code == 0, result.stderr
    assert lines[:3] == [str(SANDBOX_UID), str(SANDBOX_UID), "sandbox"]
    assert "0000000000000000" in result.stdout
    top_level = set(lines[5:-2])
    assert top_level <= {"bin", "dev", "etc", "lib", "lib64", "proc", "run", "sbin", "tmp", "usr", "workspace"}
    assert lines[-2:] == ["lo", "/workspace"]


async def test_nothing_of_the_workers_environment_reaches_the_sandbox(workspace: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"env-secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("SANDBOX_TEST_SECRET", secret)
    result = await run(f"cat /proc/1/environ; echo; for f in /proc/[0-9]*/environ; do cat $f; echo; done; "
                       f"cat /proc/{os.getpid()}/environ; env", workspace)
    assert secret not in output(result)
    names = {line.split("=", 1)[0] for line in result.stdout.splitlines() if "=" in line}
    assert names <= {"PATH", "HOME", "LANG", "TMPDIR", "PWD", "SHLVL", "_"}


async def test_host_files_and_the_project_are_out_of_reach(workspace: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    secret = f"dotenv-secret-{uuid.uuid4().hex}"
    (project / ".env").write_text(f"API_KEY={secret}\n")
    pyproject = PROJECT_ROOT / "pyproject.toml"
    result = await run(f"cat {project}/.env; cat {pyproject}; cat /etc/shadow; ls /root /work /opt /home {tmp_path}; "
                       f"cat /proc/{os.getpid()}/environ; ls /proc/{os.getpid()}/root/; "
                       "grep -rl API_KEY / 2>/dev/null; true", workspace)
    text = output(result)
    assert secret not in text
    assert "durable-copilot" not in text
    assert "No such file or directory" in result.stderr


async def test_another_sessions_workspace_cannot_be_seen(sessions: tuple[Path, Path, str]) -> None:
    mine, other, secret = sessions
    result = await run(f"ls -a ..; ls ../{other.name}; cat ../{other.name}/secret.txt; cat {other}/secret.txt; "
                       f"ls {other.parent}; cd .. && ls -R; find / -name secret.txt 2>/dev/null; true", mine)
    assert secret not in output(result)
    assert other.name not in result.stdout
    assert (other / "secret.txt").read_text() == secret


async def test_nothing_outside_the_workspace_can_be_written(sessions: tuple[Path, Path, str]) -> None:
    mine, other, _ = sessions
    name = f"pwned-{uuid.uuid4().hex[:8]}"
    targets = [f"/usr/{name}", f"/usr/bin/{name}", f"/etc/{name}", f"/{name}", f"/dev/{name}", f"/proc/{name}",
               f"{other}/{name}", f"../{other.name}/{name}"]
    result = await run(f"for t in {' '.join(targets)}; do touch $t && echo WROTE $t; done; "
                       "[ -w /proc/sys/kernel/core_pattern ] && echo WRITABLE core_pattern; "
                       "[ -w /proc/sysrq-trigger ] && echo WRITABLE sysrq-trigger; "
                       "echo x > /usr/bin/bash && echo WROTE bash; true", mine)
    assert "WROTE" not in result.stdout and "WRITABLE" not in result.stdout
    for host_path in (Path("/usr") / name, Path("/usr/bin") / name, Path("/etc") / name, Path("/") / name,
                      other / name, mine.parent / name):
        assert not host_path.exists()
    assert Path("/usr/bin/bash").stat().st_size > 100_000


async def test_no_user_namespace_and_no_system_v_memory_inside(workspace: Path) -> None:
    result = await run(
        "unshare -Ur true && echo NESTED; "
        "python3 -c 'import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
        "print(\"shmget\", libc.shmget(0, 1 << 20, 0o1600), ctypes.get_errno())'", workspace)
    assert "NESTED" not in result.stdout
    assert "shmget -1 1" in result.stdout


# --- network ---------------------------------------------------------------------------------


async def test_host_services_cannot_be_reached(workspace: Path) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    abstract_name = f"sandbox-test-{uuid.uuid4().hex}"
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract.bind("\0" + abstract_name)
    abstract.listen(8)
    abstract.setblocking(False)
    try:
        connect = (
            "import socket, sys\n"
            "for family, address in ((socket.AF_INET, ('127.0.0.1', int(sys.argv[1]))),"
            " (socket.AF_INET, ('1.1.1.1', 53)), (socket.AF_UNIX, '\\0' + sys.argv[2])):\n"
            "    try:\n"
            "        s = socket.socket(family, socket.SOCK_STREAM); s.settimeout(2); s.connect(address)\n"
            "        print('CONNECTED', address)\n"
            "    except OSError as error:\n"
            "        print('FAILED', error.errno)\n"
        )
        (workspace / "connect.py").write_text(connect)
        result = await run(f"python3 connect.py {port} {abstract_name}; "
                           f"(echo hello > /dev/tcp/127.0.0.1/{port}) && echo CONNECTED bash; true", workspace)
        assert "CONNECTED" not in result.stdout, result.stdout
        assert result.stdout.count("FAILED") == 3
        for server in (listener, abstract):
            with pytest.raises(BlockingIOError):
                server.accept()
    finally:
        listener.close()
        abstract.close()


# --- processes -------------------------------------------------------------------------------


async def test_killing_everything_inside_spares_the_host(workspace: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        result = await run(f"kill -9 -1; kill -9 $PPID; kill -9 1; kill -9 {os.getpid()} {sleeper.pid}; "
                           "echo survived", workspace)
        assert "survived" in result.stdout
        assert sleeper.poll() is None
        assert psutil.pid_exists(os.getpid())
    finally:
        sleeper.kill()
        sleeper.wait()


async def test_a_fork_bomb_is_held_to_the_process_cap_and_leaves_nothing(workspace: Path) -> None:
    token = marker()
    peak = 0
    done = asyncio.Event()

    async def watch() -> None:
        nonlocal peak
        while not done.is_set():
            found = await asyncio.to_thread(processes_with, token)
            peak = max(peak, sum(_threads(p) for p in found))
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    began = time.monotonic()
    try:
        result = await run(f"MARK={token}; :(){{ :|:& }};:; sleep 30", workspace, timeout_seconds=4, max_processes=64)
    finally:
        done.set()
        await watcher
    assert time.monotonic() - began < 4 + 1.5
    assert result.limit_hit in ("processes", "timeout")
    assert result.timed_out or result.limit_hit == "processes"
    # The cap holds inside; bwrap's two processes and a sampling race's worth are outside it.
    assert 32 < peak <= 64 + 4, peak
    assert processes_with(token) == []
    assert subprocess.run(["true"]).returncode == 0


async def test_detached_processes_die_with_the_call_at_the_timeout(workspace: Path) -> None:
    seconds = unique_sleep()
    began = time.monotonic()
    call = asyncio.create_task(run(f"setsid sleep {seconds} & nohup setsid bash -c 'sleep {seconds}' >/dev/null 2>&1 & "
                                   f"(setsid sleep {seconds} &) ; sleep 30", workspace, timeout_seconds=2))
    await asyncio.sleep(1)
    running = len(sleepers(seconds))
    result = await call
    assert running == 3  # all three detached sleepers were up before the timeout
    assert time.monotonic() - began < 2 + 1.5
    assert result.timed_out and result.limit_hit == "timeout" and result.exit_code is None
    assert sleepers(seconds) == []


async def test_background_processes_do_not_outlive_the_command(workspace: Path) -> None:
    seconds = unique_sleep()
    began = time.monotonic()
    result = await run(f"setsid sleep {seconds} & nohup setsid bash -c 'sleep {seconds}' >/dev/null 2>&1 &",
                       workspace, timeout_seconds=2)
    assert time.monotonic() - began < 2
    assert result.exit_code == 0 and not result.timed_out
    assert sleepers(seconds) == []


async def test_cancelling_the_call_kills_the_sandbox(workspace: Path) -> None:
    seconds = unique_sleep()
    task = asyncio.create_task(run(f"sleep {seconds}", workspace, timeout_seconds=60))
    for _ in range(100):
        if sleepers(seconds):
            break
        await asyncio.sleep(0.02)
    assert sleepers(seconds), "the command never started"
    task.cancel()
    cancelled_at = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    while sleepers(seconds) and time.monotonic() - cancelled_at < 1.0:
        await asyncio.sleep(0.02)
    assert sleepers(seconds) == []


async def test_the_sandbox_dies_with_the_worker(workspace: Path) -> None:
    seconds = unique_sleep()
    worker = subprocess.Popen(
        [sys.executable, "-c", "import asyncio, sys; from pathlib import Path; from sandbox import SandboxLimits, "
         "run_in_sandbox; asyncio.run(run_in_sandbox(sys.argv[1], Path(sys.argv[2]), SandboxLimits(timeout_seconds=60)))",
         f"sleep {seconds}", str(workspace)], cwd=PROJECT_ROOT)
    try:
        for _ in range(200):
            if sleepers(seconds):
                break
            await asyncio.sleep(0.02)
        assert sleepers(seconds), "the command never started"
        worker.kill()
        worker.wait()
        killed_at = time.monotonic()
        while sleepers(seconds) and time.monotonic() - killed_at < 1.0:
            await asyncio.sleep(0.02)
        assert sleepers(seconds) == []
    finally:
        worker.kill()
        worker.wait()


async def test_heartbeat_is_called_about_once_a_second(workspace: Path) -> None:
    beats: list[float] = []
    result = await run("sleep 2.6", workspace, heartbeat=lambda: beats.append(time.monotonic()))
    assert result.exit_code == 0
    assert 2 <= len(beats) <= 3


# --- memory and CPU --------------------------------------------------------------------------


async def test_one_process_cannot_take_more_memory_than_the_call_has(workspace: Path) -> None:
    result = await run('python3 -c "a = bytearray(2 * 1024 ** 3); print(\'ALLOCATED\')"', workspace,
                       memory_bytes=512 * MiB)
    assert "ALLOCATED" not in result.stdout
    assert result.limit_hit == "memory" or (result.exit_code != 0 and "MemoryError" in result.stderr)


async def test_memory_is_a_budget_for_all_processes_together(workspace: Path) -> None:
    token = marker()
    hog = "import time; a = bytearray(200 * 1024 ** 2); time.sleep(20)"
    began = time.monotonic()
    result = await run(f"MARK={token}; for i in 1 2 3 4 5 6 7 8; do python3 -c '{hog}' & done; wait", workspace,
                       memory_bytes=512 * MiB, timeout_seconds=20)
    assert result.limit_hit == "memory"
    assert result.exit_code is None
    assert time.monotonic() - began < 5
    assert processes_with(token) == []


async def test_files_in_tmp_count_towards_memory(workspace: Path) -> None:
    # Empty files take no tmpfs space, but each holds kernel memory.
    result = await run("python3 -c \"for i in range(1_000_000): open(f'/tmp/f{i}', 'w').close()\"", workspace,
                       memory_bytes=64 * MiB, timeout_seconds=20)
    assert result.limit_hit == "memory"


async def test_cpu_time_is_a_budget_for_all_processes_together(workspace: Path) -> None:
    began = time.monotonic()
    result = await run("python3 -c 'while True: pass' & python3 -c 'while True: pass' & wait", workspace,
                       cpu_seconds=1, timeout_seconds=20)
    assert result.limit_hit == "cpu"
    assert time.monotonic() - began < 4


# --- workspace quota -------------------------------------------------------------------------

QUOTA = 10 * MB
# What the sandbox may write before the watchdog reacts (see sandbox.quota); a few MB here.
OVERRUN_ALLOWANCE = 16 * MB


async def test_a_file_past_the_quota_fails_to_write(workspace: Path) -> None:
    result = await run("head -c 20000000 /dev/zero > big; echo status $?", workspace, workspace_quota_bytes=QUOTA)
    assert "status 153" in result.stdout  # head was stopped by SIGXFSZ
    assert result.quota_exceeded and result.limit_hit == "quota"
    assert disk_usage(workspace) <= QUOTA
    assert (workspace / "big").stat().st_size < QUOTA


async def test_many_small_files_cannot_pass_the_quota(workspace: Path) -> None:
    result = await run("for i in $(seq 100); do head -c 1000000 /dev/zero > f$i; done", workspace,
                       workspace_quota_bytes=QUOTA)
    assert result.quota_exceeded and result.limit_hit == "quota"
    assert result.exit_code is None
    assert len(list(workspace.iterdir())) < 100
    full = disk_usage(workspace)
    assert full <= QUOTA + OVERRUN_ALLOWANCE

    # An over-quota workspace may only shrink.
    again = await run("echo more > more.txt; mkdir more", workspace, workspace_quota_bytes=QUOTA)
    assert again.quota_exceeded
    assert disk_usage(workspace) <= full
    # Deleting is what it can do; the call after that has the room again.
    cleaned = await run("rm f*", workspace, workspace_quota_bytes=QUOTA)
    assert not cleaned.quota_exceeded and cleaned.limit_hit is None
    after = await run("echo after cleanup > note.txt; cat note.txt", workspace, workspace_quota_bytes=QUOTA)
    assert after.stdout == "after cleanup\n" and not after.quota_exceeded


async def test_deleted_files_held_open_count_towards_the_quota(workspace: Path) -> None:
    began = time.monotonic()
    result = await run("for i in $(seq 10); do (exec 3> hidden$i; rm hidden$i; head -c 5000000 /dev/zero >&3; "
                       "sleep 30) & done; sleep 30", workspace, workspace_quota_bytes=QUOTA, timeout_seconds=20)
    assert result.limit_hit == "quota"
    assert time.monotonic() - began < 5
    assert disk_usage(workspace) <= QUOTA


async def test_setuid_bits_do_not_survive_the_call(workspace: Path) -> None:
    result = await run("cp /usr/bin/id suid-id && chmod 6755 suid-id && ls -l suid-id", workspace)
    assert result.exit_code == 0, result.stderr
    mode = (workspace / "suid-id").stat().st_mode
    assert not mode & (stat.S_ISUID | stat.S_ISGID)


async def test_links_in_the_workspace_do_not_redirect_the_worker(sessions: tuple[Path, Path, str]) -> None:
    """The worker walks the workspace before and after each call (ownership, set-uid bits,
    quota); links in it, made by the host or by a call, must not take that walk elsewhere."""
    mine, other, _ = sessions
    target = other / "secret.txt"
    os.chmod(target, 0o4755)
    before = target.stat()
    (mine / "link").symlink_to(target)
    (mine / "passwd-link").symlink_to("/etc/passwd")
    (mine / "up").symlink_to("..")
    result = await run("ln -s / root-link; mkdir d; ln -s /usr d/usr; ln -s ../../session-other d/other; ls", mine)
    assert result.exit_code == 0, result.stderr
    await run("true", mine)
    after = target.stat()
    assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid, before.st_mode)
    assert Path("/etc/passwd").stat().st_uid == 0 and Path("/usr").stat().st_uid == 0
    identity = host_identity()
    if identity is not None:
        assert os.lstat(mine / "link").st_uid == identity.uid  # the link itself was adopted


# --- output ----------------------------------------------------------------------------------


async def test_output_is_capped_while_it_streams(workspace: Path) -> None:
    cap = 1 * MiB
    rss_before = psutil.Process().memory_info().rss
    result = await run("yes | head -c 500000000", workspace, output_max_bytes=cap, timeout_seconds=30)
    growth = psutil.Process().memory_info().rss - rss_before
    assert result.exit_code == 0
    assert len(result.stdout.encode()) == cap
    assert result.stdout_cut_bytes == 500_000_000 - cap
    assert growth < 50 * MB, growth


# --- ordinary work ---------------------------------------------------------------------------


async def test_scripts_files_and_results_flow_between_host_and_calls(workspace: Path) -> None:
    (workspace / "script.py").write_text("import sys\nprint(sum(range(10)), sys.argv[1])\n")
    first = await run("python3 script.py first > out.txt && cat out.txt", workspace)
    assert first.stdout == "45 first\n" and first.exit_code == 0
    second = await run("cat out.txt; echo second >> out.txt; mkdir -p build/obj && echo ok > build/obj/x", workspace)
    assert second.stdout == "45 first\n"
    assert (workspace / "out.txt").read_text() == "45 first\nsecond\n"
    assert (workspace / "build/obj/x").read_text() == "ok\n"
    identity = host_identity()
    owner = identity.uid if identity is not None else os.geteuid()
    assert (workspace / "out.txt").stat().st_uid == owner
    # A file a host-side tool writes later is writable by the next call.
    (workspace / "from-host.txt").write_text("host\n")
    third = await run("echo call >> from-host.txt && cat from-host.txt", workspace)
    assert third.stdout == "host\ncall\n"


async def test_exit_status_stderr_stdin_and_a_long_command(workspace: Path) -> None:
    result = await run("cat; readlink /proc/self/fd/0; echo out; echo err >&2; exit 7", workspace)
    assert (result.exit_code, result.stdout, result.stderr) == (7, "/dev/null\nout\n", "err\n")
    assert not result.timed_out and result.limit_hit is None
    long_command = "cat > long.txt <<'EOF'\n" + "x" * 300_000 + "\nEOF\nwc -c < long.txt"
    long = await run(long_command, workspace)
    assert long.stdout.strip() == "300001"


async def test_system_tools_work_inside(workspace: Path) -> None:
    result = await run("/usr/bin/python3 -c 'print(6 * 7)'; /usr/bin/bash --version | head -1; "
                       "echo a b | awk '{print $2}'; ls /tmp && touch /tmp/t && echo tmp-ok", workspace)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "42"
    assert "b" in result.stdout.splitlines() and "tmp-ok" in result.stdout


def test_the_bundled_engine_is_found_and_the_probe_is_cached() -> None:
    engine = find_bwrap()
    assert engine is not None and os.access(engine, os.X_OK)
    assert probe() is probe()
    assert probe().engine == engine
