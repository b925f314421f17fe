"""The launcher's run record: what a killed launcher left is stopped, a pid the system has given
to another process since is not, and a port another program holds is named."""

import os
import signal
import socket
import subprocess

import psutil
import pytest

from local.stack.leftovers import LaunchRefused, RunRecord, require_free_port


def orphan_like() -> subprocess.Popen:
    """A child in its own process group, as the launcher starts them."""
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


def test_a_recorded_child_still_running_is_stopped_and_its_record_removed(tmp_path, capsys):
    child = orphan_like()
    try:
        RunRecord(tmp_path).add("worker 1", child.pid, signal.SIGTERM)
        RunRecord(tmp_path).stop_leftovers()
        assert child.wait(5) == -signal.SIGTERM
        assert "stopping worker-1 (pid" in capsys.readouterr().out
        assert not list(tmp_path.glob("*.pid"))
    finally:
        child.kill()
        child.wait()


def test_a_pid_given_to_another_process_since_is_left_alone(tmp_path):
    child = orphan_like()
    try:
        started = psutil.Process(child.pid).create_time()
        (tmp_path / "api.pid").write_text(f"{child.pid} {started - 3600!r} {int(signal.SIGTERM)} 1\n")
        RunRecord(tmp_path).stop_leftovers()
        assert child.poll() is None
        assert not list(tmp_path.glob("*.pid"))  # a stale record is dropped
    finally:
        child.kill()
        child.wait()


def test_a_running_launcher_on_the_same_data_is_refused_and_keeps_its_record(tmp_path):
    launcher = orphan_like()
    try:
        RunRecord(tmp_path).add("launcher", launcher.pid, signal.SIGTERM)
        second = RunRecord(tmp_path)
        with pytest.raises(LaunchRefused, match=f"a launcher \\(pid {launcher.pid}\\) is already running"):
            second.claim(tmp_path)
        second.clear()
        assert (tmp_path / "launcher.pid").read_text().startswith(f"{launcher.pid} ")
    finally:
        launcher.kill()
        launcher.wait()


def test_a_port_another_program_holds_is_named_with_the_variable_that_moves_ours():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(LaunchRefused) as refused:
            require_free_port(port, "Redis", "DEV_REDIS_PORT")
    message = str(refused.value)
    assert f"port {port} (Redis) is already in use by another program (pid {os.getpid()}" in message
    assert "set DEV_REDIS_PORT to a free port" in message
    require_free_port(port, "Redis", "DEV_REDIS_PORT")  # free again
