"""The bubblewrap arguments: namespaces, identity, environment and filesystem."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .identity import SANDBOX_GID, SANDBOX_HOME, SANDBOX_UID, group_file, passwd_file
from .limits import SandboxLimits

HOSTNAME = "sandbox"
WORKSPACE = "/workspace"
PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"

# Top-level directories that merged-/usr systems make symlinks into /usr and others keep real.
_USR_COMPAT_DIRS = ("bin", "sbin", "lib", "lib64", "lib32", "libx32")

# Host files that are public system data the dynamic loader and common tools need; the rest of
# /etc (credentials, service configuration, machine identity) stays out. Debian points tool
# names such as awk and editor through /etc/alternatives.
_HOST_ETC = ("/etc/ld.so.cache", "/etc/alternatives", "/etc/localtime", "/etc/os-release")

_NSSWITCH = b"passwd: files\ngroup: files\nshadow: files\nhosts: files\nnetworks: files\n"
_HOSTS = f"127.0.0.1 localhost {HOSTNAME}\n::1 localhost ip6-localhost ip6-loopback\n".encode()


@dataclass(frozen=True)
class DataFile:
    """A file the sandbox gets a private read-only copy of, passed to bwrap through an fd."""

    path: str
    content: bytes


def etc_files() -> list[DataFile]:
    return [
        DataFile("/etc/passwd", passwd_file()),
        DataFile("/etc/group", group_file()),
        DataFile("/etc/nsswitch.conf", _NSSWITCH),
        DataFile("/etc/hosts", _HOSTS),
        DataFile("/etc/hostname", f"{HOSTNAME}\n".encode()),
    ]


def namespace_args() -> list[str]:
    # --unshare-user and --unshare-cgroup are spelled out because --unshare-all only tries
    # them: a host that cannot create either must fail, not run with less isolation.
    return [
        "--unshare-all", "--unshare-user", "--unshare-cgroup",
        # The command gets no capabilities and cannot make a user namespace of its own (where it
        # would be root, with the mount and network powers that come with that).
        "--disable-userns", "--cap-drop", "ALL",
        "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID), "--hostname", HOSTNAME,
        # A new session: no controlling terminal to push input into (TIOCSTI).
        "--new-session",
        "--die-with-parent",
    ]


def environment_args() -> list[str]:
    return [
        "--clearenv",
        "--setenv", "PATH", PATH,
        "--setenv", "HOME", SANDBOX_HOME,
        "--setenv", "LANG", "C.UTF-8",
        "--setenv", "TMPDIR", "/tmp",
    ]


def filesystem_args(limits: SandboxLimits, *, workspace_args: list[str], data_fds: list[tuple[int, str]]) -> list[str]:
    """Read-only system software, fresh /proc and /dev, private size-limited tmpfs mounts and
    the workspace; nothing else of the host. The order matters: bwrap applies the arguments in
    sequence, and the read-only remounts come last."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in _USR_COMPAT_DIRS:
        host_path = f"/{name}"
        if os.path.islink(host_path):
            args += ["--symlink", os.readlink(host_path), host_path]
        elif os.path.isdir(host_path):
            args += ["--ro-bind", host_path, host_path]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--perms", "1777", "--size", str(limits.tmp_size_bytes), "--tmpfs", "/tmp"]
    args += ["--perms", "1777", "--size", str(limits.shm_size_bytes), "--tmpfs", "/dev/shm"]
    for host_path in _HOST_ETC:
        if os.path.islink(host_path):
            # Keep the link (it points into /usr, which is there) rather than a copy of the target.
            args += ["--symlink", os.readlink(host_path), host_path]
        else:
            args += ["--ro-bind-try", host_path, host_path]
    for fd, path in data_fds:
        args += ["--perms", "0444", "--ro-bind-data", str(fd), path]
    args += [*workspace_args, "--chdir", WORKSPACE]
    # The root and /dev are tmpfs mounts with no size limit; read-only, they cannot hold data.
    args += ["--remount-ro", "/dev", "--remount-ro", "/"]
    return args
