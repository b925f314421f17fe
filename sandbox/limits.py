"""What a sandboxed call may use, and what it reports back."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 ** 2
GiB = 1024 ** 3


@dataclass(frozen=True)
class SandboxLimits:
    """Budgets for one call. Every budget covers the whole call (all of its processes together)
    unless its name says otherwise.

    - ``timeout_seconds``: wall clock; when it runs out every process of the call is killed.
    - ``max_processes``: processes and threads alive at once (what RLIMIT_NPROC counts); forks
      past it fail with EAGAIN.
    - ``memory_bytes``: resident memory summed over the call's processes, plus the pages held by
      its memfds and 1 KiB of kernel memory per file on its tmpfs mounts. The call is killed when
      the sum passes it.
    - ``cpu_seconds``: CPU time summed over the call's processes; the call is killed when the sum
      passes it. Each process also has it as RLIMIT_CPU.
    - ``file_size_bytes``: the largest single file (RLIMIT_FSIZE); lowered to what is left of the
      workspace quota when that is smaller.
    - ``open_files``: file descriptors per process (RLIMIT_NOFILE).
    - ``output_max_bytes``: bytes of stdout and of stderr kept (each); the rest is counted and
      dropped.
    - ``workspace_quota_bytes``: disk space of the session's workspace, including what was there
      before the call (see ``sandbox.quota``).
    - ``tmp_size_bytes``: size of the private, memory-backed ``/tmp``. ``/dev/shm`` is a separate
      tmpfs of ``min(tmp_size_bytes, 64 MiB)``. Their contents do not count towards
      ``memory_bytes``.
    - ``address_space_bytes``: per-process virtual memory (RLIMIT_AS), a backstop that stops one
      process from outgrowing the budget between two watchdog samples. ``None`` means twice
      ``memory_bytes``: runtimes reserve far more address space than they touch (Node's V8 does
      not start under 512 MiB), and the resident sum is what the budget is about.
    """

    timeout_seconds: float
    max_processes: int = 64
    memory_bytes: int = 512 * MiB
    cpu_seconds: int = 60
    file_size_bytes: int = 256 * MiB
    open_files: int = 256
    output_max_bytes: int = 256 * 1024
    workspace_quota_bytes: int = 1 * GiB
    tmp_size_bytes: int = 256 * MiB
    address_space_bytes: int | None = None

    def __post_init__(self) -> None:
        # The floors are what bash and the sandbox's own reaper need to start at all.
        minimums = {
            "max_processes": 2,
            "memory_bytes": 16 * MiB,
            "cpu_seconds": 1,
            "file_size_bytes": 0,
            "open_files": 16,
            "output_max_bytes": 0,
            "workspace_quota_bytes": 0,
            "tmp_size_bytes": 64 * 1024,
        }
        if not self.timeout_seconds > 0:
            raise ValueError(f"timeout_seconds must be positive, not {self.timeout_seconds!r}")
        for name, minimum in minimums.items():
            value = getattr(self, name)
            if not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an integer of at least {minimum}, not {value!r}")
        if self.address_space_bytes is not None and self.address_space_bytes < self.memory_bytes:
            raise ValueError("address_space_bytes must not be below memory_bytes")

    @property
    def effective_address_space_bytes(self) -> int:
        return self.address_space_bytes if self.address_space_bytes is not None else 2 * self.memory_bytes

    @property
    def shm_size_bytes(self) -> int:
        return min(self.tmp_size_bytes, 64 * MiB)


@dataclass(frozen=True)
class SandboxResult:
    """The outcome of one call.

    ``exit_code`` is the command's own exit status (128 + N when a signal N ended it), or
    ``None`` when the sandbox was killed from outside (timeout, a budget, cancellation).

    ``limit_hit`` is one of ``"memory"``, ``"cpu"``, ``"quota"``, ``"processes"``,
    ``"file_size"``, ``"timeout"`` or ``None``, chosen in this order:

    1. the budget the sandbox was killed for (memory, cpu, quota, or processes when the kernel
       let more through than RLIMIT_NPROC);
    2. else the first budget the call ran into without being killed for it: ``"processes"``
       when it reached the process cap (further forks failed), ``"quota"`` when it filled the
       workspace, ``"file_size"`` or ``"cpu"`` when RLIMIT_FSIZE or RLIMIT_CPU ended the
       command's shell;
    3. else ``"timeout"`` when the wall clock ran out.

    So a fork bomb stopped by the timeout reports ``"processes"`` with ``timed_out=True``.
    ``quota_exceeded`` says the workspace is full or over its quota after the call.
    """

    exit_code: int | None
    stdout: str
    stderr: str
    stdout_cut_bytes: int
    stderr_cut_bytes: int
    timed_out: bool
    quota_exceeded: bool
    limit_hit: str | None
    duration_seconds: float
