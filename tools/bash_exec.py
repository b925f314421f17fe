"""bash_exec: a shell command in the session's own working directory.

Isolation it gives: its own working directory per session, an environment with nothing but a
minimal PATH/HOME/LANG (no secrets inherited), resource limits (CPU time, memory, file size,
open files), a timeout that kills the whole process group, death with the worker process,
output caps, and configured secret values redacted from what it prints. What it does not give:
it is not a sandbox. The command runs as the worker's own OS user, can read whatever that user can read, and has the network.
"""

import asyncio
import ctypes
import os
import resource
import signal
from pathlib import Path

from pydantic import BaseModel, Field

from tools.base import Tool, ToolContext

DEFAULT_TIMEOUT_SECONDS = 120
MEMORY_LIMIT_BYTES = 2 * 1024 ** 3
FILE_SIZE_LIMIT_BYTES = 256 * 1024 ** 2
CREDIT_COST = 1
PR_SET_PDEATHSIG = 1


class BashExecInput(BaseModel):
    command: str = Field(min_length=1, max_length=20_000, description="A bash command line.")
    timeout: int = Field(default=DEFAULT_TIMEOUT_SECONDS, ge=1, description="Seconds before the command is killed.")


def session_directory(root: str, session_id: str) -> Path:
    path = Path(root).resolve() / "sessions" / session_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def redact(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "[REDACTED]")
    return text


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit} more characters cut]"


def _die_with_parent() -> None:
    """Linux: the command is killed if the worker dies, so a crashed worker leaves no orphan
    that finishes a call the retry will run again."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def _limits(cpu_seconds: int):
    def apply() -> None:
        _die_with_parent()
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT_BYTES, FILE_SIZE_LIMIT_BYTES))
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    return apply


async def bash_exec(arguments: BashExecInput, context: ToolContext) -> dict:
    settings = context.services.settings
    # Within the call's budget, so a command that runs too long ends with its own `timed_out` result.
    timeout = max(1, min(arguments.timeout, int(context.budget_seconds) - 1))
    cwd = session_directory(settings.workspace_dir, context.session_id)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(cwd), "LANG": "C.UTF-8"}
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", arguments.command, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True, preexec_fn=_limits(timeout),
    )
    timed_out = False
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        timed_out = True
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = await process.communicate()
    except asyncio.CancelledError:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    exit_code = process.returncode if not timed_out else -signal.SIGKILL
    limit, secrets = settings.bash_output_max_chars, settings.secret_values
    return {
        "exit_code": exit_code,
        "stdout": _cap(redact(stdout.decode(errors="replace"), secrets), limit),
        "stderr": _cap(redact(stderr.decode(errors="replace"), secrets), limit),
        "timed_out": timed_out,
        "message": (f"Command timed out after {timeout}s and was killed." if timed_out
                    else f"Command executed with status code {exit_code}"),
    }


TOOL = Tool(
    name="bash_exec",
    description="Runs a bash command in this session's working directory and returns exit_code, stdout, "
                "stderr and timed_out. Default timeout 120 s.",
    input_model=BashExecInput,
    run=bash_exec,
    credit_cost=CREDIT_COST,
)
