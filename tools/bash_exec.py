"""bash_exec: a bash command in a sandbox whose only host folder is the session's working directory.

Every call runs in a fresh bubblewrap sandbox (`sandbox/`): its own user, PID, network, IPC and
UTS namespaces, an unprivileged user, no network, read-only system programs, a private `/tmp`,
and the session's folder at `/workspace`, under budgets that hold for the whole call (processes,
memory, CPU, file size, the session's disk quota, output kept). Where no sandbox can be made the
tool is not offered and a call answers `sandbox_unavailable`; it never falls back to running
unsandboxed unless `BASH_SANDBOX=none` says so (a developer's own machine only).
"""

import time

from pydantic import BaseModel, Field

from observability import metrics
from sandbox import SandboxLimits, SandboxResult, SandboxUnavailable, probe, run_in_sandbox
from sandbox.unconfined import run_unconfined
from settings import Settings
from tools.base import Tool, ToolContext, ToolError

DEFAULT_TIMEOUT_SECONDS = 120
CREDIT_COST = 1
LIMIT_MESSAGES = {
    "timeout": "it ran past its timeout of {timeout}s",
    "memory": "it used more than {memory} MiB of memory",
    "cpu": "it used more than {cpu}s of CPU time",
    "processes": "it tried to run more than {processes} processes at once",
    "quota": "the session's working directory would pass its quota of {quota} MiB",
    "file_size": "a file would pass the largest file size of {file_size} MiB",
}


class BashExecInput(BaseModel):
    command: str = Field(min_length=1, max_length=20_000, description="A bash command line.")
    timeout: int = Field(default=DEFAULT_TIMEOUT_SECONDS, ge=1, description="Seconds before the command is killed.")


def redact(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "[REDACTED]")
    return text


def sandbox_limits(settings: Settings, timeout: float) -> SandboxLimits:
    return SandboxLimits(
        timeout_seconds=timeout, max_processes=settings.bash_max_processes, memory_bytes=settings.bash_memory_bytes,
        cpu_seconds=min(settings.bash_cpu_seconds, max(1, int(timeout))), file_size_bytes=settings.bash_file_size_bytes,
        output_max_bytes=settings.bash_output_max_chars, workspace_quota_bytes=settings.workspace_quota_bytes,
        tmp_size_bytes=settings.bash_tmp_bytes,
    )


def unavailable_reason(settings: Settings) -> str | None:
    if settings.bash_sandbox == "none":
        return None
    availability = probe()
    return None if availability.available else f"no sandbox can be made here: {availability.reason}"


def _message(result: SandboxResult, limits: SandboxLimits) -> str:
    if result.limit_hit in LIMIT_MESSAGES and (result.exit_code is None or result.limit_hit in ("quota", "file_size")):
        why = LIMIT_MESSAGES[result.limit_hit].format(
            timeout=int(limits.timeout_seconds), memory=limits.memory_bytes >> 20, cpu=limits.cpu_seconds,
            processes=limits.max_processes, quota=limits.workspace_quota_bytes >> 20,
            file_size=limits.file_size_bytes >> 20)
        ended = "was killed" if result.exit_code is None else f"ended with status code {result.exit_code}"
        return f"Command {ended}: {why}."
    if result.limit_hit == "processes":
        return f"Command executed with status code {result.exit_code}; some of its processes could not start " \
               f"(at most {limits.max_processes} at once)."
    return f"Command executed with status code {result.exit_code}"


def sandbox_outcome(result: SandboxResult) -> str:
    """`ok`, `exit_nonzero`, `timeout` or the limit the command hit (`memory`, `cpu`, ...)."""
    if result.timed_out:
        return "timeout"
    if result.limit_hit in LIMIT_MESSAGES:
        return result.limit_hit
    return "ok" if result.exit_code == 0 else "exit_nonzero"


async def bash_exec(arguments: BashExecInput, context: ToolContext) -> dict:
    services = context.services
    settings = services.settings
    # Within the call's budget, so a command that runs too long ends with its own `timed_out` result.
    timeout = max(1, min(arguments.timeout, int(context.budget_seconds) - 1))
    workspace = services.storage.session_folder(context.session_id)
    limits = sandbox_limits(settings, timeout)
    engine = settings.bash_sandbox
    started = time.monotonic()
    if engine == "none":
        if context.dry_run:  # unconfined, a command reaches the host and the network
            raise ToolError("dry_run", "Commands do not run in a dry-run session on a server without a sandbox.")
        result = await run_unconfined(arguments.command, workspace, limits)
    else:
        try:
            result = await run_in_sandbox(arguments.command, workspace, limits)
        except SandboxUnavailable as unavailable:
            metrics.SANDBOX_CALLS.labels(engine, "unavailable").inc()
            raise ToolError("sandbox_unavailable", f"Commands cannot run on this server: no sandbox can be made "
                                                   f"({unavailable}).") from None
    metrics.SANDBOX_CALLS.labels(engine, sandbox_outcome(result)).inc()
    metrics.SANDBOX_CALL_DURATION.labels(engine).observe(time.monotonic() - started)
    secrets = settings.secret_values
    output = {
        "exit_code": result.exit_code,
        "stdout": redact(result.stdout, secrets),
        "stderr": redact(result.stderr, secrets),
        "timed_out": result.timed_out,
        "message": _message(result, limits),
    }
    if result.limit_hit:
        output["limit"] = result.limit_hit
    for stream in ("stdout", "stderr"):
        cut = getattr(result, f"{stream}_cut_bytes")
        if cut:
            output[f"{stream}_cut_bytes"] = cut
            output[stream] += f"\n[... {cut} more bytes cut]"
    return output


TOOL = Tool(
    name="bash_exec",
    description="Runs a bash command in a sandbox whose working directory /workspace holds this session's files "
                "(the ones write_workspace_file saves); no network. Returns exit_code, stdout, stderr and timed_out. "
                "Default timeout 120 s.",
    input_model=BashExecInput,
    run=bash_exec,
    credit_cost=CREDIT_COST,
    unavailable_reason=unavailable_reason,
)
