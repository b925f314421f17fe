"""The first program inside the sandbox: it sets the per-process limits, reports that the
sandbox is up, and hands over to the command.

The limits are set here rather than in a ``preexec_fn`` for bwrap:

- RLIMIT_NPROC must take effect inside the sandbox's fresh user namespace. Since Linux 5.14 the
  kernel counts processes per (user namespace, uid) and also checks every ancestor level
  against the limit its creator had when the namespace was made. A limit set on bwrap would
  count every process of the host account, shared by all concurrent sandboxes, and could stop
  bwrap itself from forking; set in here it counts this call's processes only.
- A ``preexec_fn`` runs Python between fork and exec, which can deadlock in a worker with
  threads, and bash's ``ulimit`` sets the others just as well before any command code runs.

Soft and hard limits are both set, so the command cannot raise them again.
"""

from __future__ import annotations

import shlex

from .limits import SandboxLimits

BASH = "/usr/bin/bash"
LAUNCH_FAILED_EXIT = 125

# Commands longer than this go through a file: one exec argument may hold at most 128 KiB.
MAX_INLINE_COMMAND_BYTES = 100_000
COMMAND_FILE = "/run/sandbox/command"


def launcher_argv(limits: SandboxLimits, *, file_size_bytes: int, started_fd: int, command: str) -> list[str]:
    """``bash -c LAUNCHER`` with the command as an argument, or reading it from COMMAND_FILE
    (``command_is_inline`` tells which)."""
    script = _script(limits, file_size_bytes=file_size_bytes, started_fd=started_fd,
                     inline=command_is_inline(command))
    argv = [BASH, "-c", script, "bash"]
    if command_is_inline(command):
        argv.append(command)
    return argv


def command_is_inline(command: str) -> bool:
    return len(command.encode()) <= MAX_INLINE_COMMAND_BYTES


def _script(limits: SandboxLimits, *, file_size_bytes: int, started_fd: int, inline: bool) -> str:
    cpu = limits.cpu_seconds
    # bash counts -f and -v in KiB; rounding down keeps both within the byte budgets. -u counts
    # the sandbox's reaper (its pid 1) too, hence the + 1.
    limits_line = (
        f"ulimit -c 0 -n {limits.open_files} -u {limits.max_processes + 1}"
        f" -v {limits.effective_address_space_bytes // 1024} -f {file_size_bytes // 1024}"
        # One second between SIGXCPU (catchable) and SIGKILL.
        f" -t {cpu + 1} && ulimit -S -t {cpu}"
    )
    handover = f'exec {BASH} -c "$1" bash' if inline else f"exec {BASH} {shlex.quote(COMMAND_FILE)}"
    return "\n".join([
        f"{limits_line} || exit {LAUNCH_FAILED_EXIT}",
        f"printf 1 >&{started_fd} && exec {started_fd}>&- || exit {LAUNCH_FAILED_EXIT}",
        handover,
    ])
