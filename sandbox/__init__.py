"""Run shell commands in a bubblewrap sandbox with no way to the host.

Each call gets fresh user, PID, network, IPC, UTS and cgroup namespaces, an unprivileged user,
no capabilities, read-only system software, private size-limited ``/tmp`` and ``/dev/shm``, and
the session's workspace as its only host directory, under budgets that hold for the whole call
(see :class:`SandboxLimits`). There is no fallback: when the host cannot run the sandbox,
:func:`run_in_sandbox` raises :class:`SandboxUnavailable`. ``run_unconfined`` is the separate,
explicitly chosen mode without a sandbox, for a developer's own machine.
"""

from .availability import SandboxAvailability, SandboxUnavailable, find_bwrap, probe
from .limits import SandboxLimits, SandboxResult
from .runner import run_in_sandbox
from .unconfined import run_unconfined

__all__ = [
    "SandboxAvailability",
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailable",
    "find_bwrap",
    "probe",
    "run_in_sandbox",
    "run_unconfined",
]
