"""A seccomp filter that closes the few kernel interfaces the namespaces leave open.

Each denied call either holds memory that no process's resident size shows (so the memory
watchdog could not see it), reaches state shared with the host, or is a large kernel attack
surface that shell tools do not need:

- ``shmget``, ``msgget``, ``semget``: System V IPC objects live on after every process detaches
  and count in no RSS; the sandbox's IPC namespace has the kernel's unlimited defaults.
- ``io_uring_*``, ``userfaultfd``, ``bpf``, ``perf_event_open``: attack surface; callers fall
  back to ordinary system calls when io_uring reports ENOSYS.
- ``keyctl``, ``add_key``, ``request_key``: kernel keyrings are keyed by the host user.
- ``syslog``: the host's kernel log.

Any other architecture than the native one (e.g. i386 calls from a 64-bit process, or x32) is
killed, since its system call numbers would slip past the table.
"""

from __future__ import annotations

import errno
import platform
import struct

# Offsets into struct seccomp_data and the classic BPF opcodes the filter uses.
_DATA_NR = 0
_DATA_ARCH = 4
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_RET_K = 0x06

_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_RET_ALLOW = 0x7FFF0000

_X32_SYSCALL_BIT = 0x40000000

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}

_DENIED_NAMES = {
    "shmget": errno.EPERM,
    "msgget": errno.EPERM,
    "semget": errno.EPERM,
    "io_uring_setup": errno.ENOSYS,
    "io_uring_enter": errno.ENOSYS,
    "io_uring_register": errno.ENOSYS,
    "userfaultfd": errno.ENOSYS,
    "bpf": errno.EPERM,
    "perf_event_open": errno.EPERM,
    "keyctl": errno.ENOSYS,
    "add_key": errno.ENOSYS,
    "request_key": errno.ENOSYS,
    "syslog": errno.EPERM,
}

_SYSCALL_NUMBERS = {
    "x86_64": {
        "shmget": 29, "semget": 64, "msgget": 68, "syslog": 103, "add_key": 248, "request_key": 249,
        "keyctl": 250, "perf_event_open": 298, "bpf": 321, "userfaultfd": 323,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    },
    "aarch64": {
        "syslog": 116, "msgget": 186, "semget": 190, "shmget": 194, "add_key": 217, "request_key": 218,
        "keyctl": 219, "perf_event_open": 241, "bpf": 280, "userfaultfd": 282,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    },
}


def supported_machine(machine: str | None = None) -> bool:
    return (machine or platform.machine()) in _AUDIT_ARCH


def build_filter(machine: str | None = None) -> bytes:
    """The compiled program, in the ``struct sock_filter`` layout bwrap's ``--seccomp`` reads."""
    machine = machine or platform.machine()
    if machine not in _AUDIT_ARCH:
        raise ValueError(f"no seccomp table for {machine}")
    numbers = _SYSCALL_NUMBERS[machine]
    denied = sorted((numbers[name], error) for name, error in _DENIED_NAMES.items())

    # Layout: arch check, load nr, [x32 check], one jump per denied call, allow,
    # then one return per denied call (so each can carry its own errno).
    program: list[tuple[int, int, int, int]] = [
        (_LD_W_ABS, 0, 0, _DATA_ARCH),
        (_JEQ_K, 1, 0, _AUDIT_ARCH[machine]),
        (_RET_K, 0, 0, _RET_KILL_PROCESS),
        (_LD_W_ABS, 0, 0, _DATA_NR),
    ]
    if machine == "x86_64":
        program.append((_JGE_K, 0, 1, _X32_SYSCALL_BIT))
        program.append((_RET_K, 0, 0, _RET_KILL_PROCESS))
    checks_start = len(program)
    allow_index = checks_start + len(denied)
    for position, (number, _) in enumerate(denied):
        index = checks_start + position
        target = allow_index + 1 + position
        program.append((_JEQ_K, target - index - 1, 0, number))
    program.append((_RET_K, 0, 0, _RET_ALLOW))
    for _, error in denied:
        program.append((_RET_K, 0, 0, _RET_ERRNO | error))
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)
