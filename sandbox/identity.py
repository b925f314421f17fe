"""Who the sandboxed command is, inside the sandbox and on the host."""

from __future__ import annotations

import os
from dataclasses import dataclass

SANDBOX_USER = "sandbox"
SANDBOX_UID = 1000
SANDBOX_GID = 1000
SANDBOX_HOME = "/workspace"

# systemd's allocation table leaves 0x70000000-0x7FFDFFFF unused, so no login, system, dynamic
# or container user of a standard distribution owns this id.
DEFAULT_HOST_ID = 0x70000000
HOST_UID_ENV = "SANDBOX_HOST_UID"
HOST_GID_ENV = "SANDBOX_HOST_GID"


@dataclass(frozen=True)
class HostIdentity:
    uid: int
    gid: int


def host_identity() -> HostIdentity | None:
    """The host account bubblewrap is started as, or ``None`` to keep the worker's own.

    A worker running as root must not hand its uid to the sandbox: the sandbox's user is mapped
    to the host uid that starts bwrap, and host uid 0 keeps powers that need no capability. The
    kernel then does not enforce RLIMIT_NPROC (it exempts the root user), grants owner access to
    root-owned sysctls under ``/proc/sys`` (bwrap does not cover it for unprivileged use, and
    ``kernel.core_pattern`` there runs a program as host root), and a set-uid file the command
    leaves in the workspace would be set-uid root on the host. So a root worker starts bwrap as
    a dedicated unprivileged id, overridable with ``SANDBOX_HOST_UID``/``SANDBOX_HOST_GID``,
    which must belong to nobody else. A worker that is not root already is such an account.
    """
    if os.geteuid() != 0:
        return None
    uid = _id_from_env(HOST_UID_ENV, DEFAULT_HOST_ID)
    gid = _id_from_env(HOST_GID_ENV, uid)
    return HostIdentity(uid=uid, gid=gid)


def _id_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = int(raw)
    if value <= 0 or value >= 2 ** 32 - 1:
        raise ValueError(f"{name} must be an unprivileged id, not {raw!r}")
    return value


def passwd_file() -> bytes:
    # Unmapped host ids show up as the kernel's overflow id 65534, hence the nobody entries.
    return (
        f"{SANDBOX_USER}:x:{SANDBOX_UID}:{SANDBOX_GID}:{SANDBOX_USER}:{SANDBOX_HOME}:/usr/bin/bash\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    ).encode()


def group_file() -> bytes:
    return f"{SANDBOX_USER}:x:{SANDBOX_GID}:\nnogroup:x:65534:\n".encode()
