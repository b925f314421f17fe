"""The watchdog half of the workspace quota (see ``sandbox.quota`` for the whole design).

Walking the workspace costs time in proportion to its size, so it cannot run every few
milliseconds. The filesystem's free space can: ``fstatvfs`` is one cheap call, and every byte
the sandbox writes (to files it keeps or deletes) comes out of it. Between walks the watchdog
estimates the usage as the last walk's figure plus the free space lost since, which can only
overestimate (other writers on the same filesystem inflate it). A walk confirms before
anything is killed, so the estimate decides when to look, never what to do.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Callable

from . import quota

# Free space is polled every 2 ms while the sandbox uses CPU (writing takes CPU time) and every
# 20 ms while it idles, so a waiting call costs fifty cheap wake-ups a second.
FREE_SPACE_POLL_BUSY = 0.002
FREE_SPACE_POLL_IDLE = 0.02
# Walks the estimate gives no reason for: four times the walk's own duration apart, so they
# cost at most a fifth of a core however large the tree.
PERIODIC_WALK_FACTOR = 4.0
PERIODIC_WALK_MIN = 0.5
PERIODIC_WALK_MAX = 2.0
# A walk this quick runs on the event loop: handing it to a thread would cost more than it does.
INLINE_WALK_MAX = 0.001
# Walks the estimate asks for: at least twice their duration apart, so a filesystem that other
# writers keep busy while the workspace is near its quota costs at most a third of a core.
TRIGGERED_WALK_FACTOR = 2.0


async def watch(workspace_fd: int, budget: quota.QuotaBudget, *, held_deleted_bytes: Callable[[], int],
                busy: Callable[[], bool], on_exceeded: Callable[[], None]) -> None:
    """Returns after calling ``on_exceeded`` once, or runs until cancelled. ``busy`` says
    whether the sandbox used CPU time lately; ``held_deleted_bytes`` is what its processes hold
    of deleted workspace files."""
    lowest = budget.before.effective_bytes
    took = float("inf")
    while True:
        free_before = _free_bytes(workspace_fd)
        began = time.monotonic()
        if took <= INLINE_WALK_MAX:
            usage = quota.measure_and_close(os.dup(workspace_fd))
        else:
            usage = await asyncio.to_thread(quota.measure_and_close, os.dup(workspace_fd))
        took = time.monotonic() - began
        total = usage.effective_bytes + held_deleted_bytes()
        lowest = min(lowest, total)
        limit = budget.kill_above_bytes(lowest)
        if total > limit:
            on_exceeded()
            return
        finished = time.monotonic()
        next_walk = finished + min(PERIODIC_WALK_MAX, max(PERIODIC_WALK_MIN, PERIODIC_WALK_FACTOR * took))
        earliest_walk = finished + TRIGGERED_WALK_FACTOR * took
        while True:
            await asyncio.sleep(FREE_SPACE_POLL_BUSY if busy() else FREE_SPACE_POLL_IDLE)
            now = time.monotonic()
            # Free space was read before the walk, so writes during the walk are in the estimate.
            estimate = total + max(0, free_before - _free_bytes(workspace_fd))
            if now >= next_walk or (estimate > limit and now >= earliest_walk):
                break


def _free_bytes(fd: int) -> int:
    info = os.fstatvfs(fd)
    return info.f_bfree * info.f_frsize
