"""Percentiles, and the CPU and memory of the stack's processes while a benchmark runs."""

import asyncio
import math
import os
import time
from typing import Optional, Sequence

import psutil

# The processes of the system under test (not the model server, the baseline or the client).
OURS = ("API", "temporal", "redis", "postgres")


def our_cpu_seconds(resources: dict) -> float:
    """CPU seconds of the API, every worker, Temporal, Redis and PostgreSQL together."""
    return sum(entry.get("cpu_seconds") or 0 for name, entry in resources.items()
               if name in OURS or name.startswith("worker"))


def percentile(values: Sequence[float], q: float) -> Optional[float]:
    """The nearest-rank percentile (q in 0..100): a value that was really observed."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value * 1000, 2)


def summary_ms(values: Sequence[float]) -> dict:
    """Median, p99 and max of durations given in seconds, reported in milliseconds."""
    return {"n": len(values), "p50_ms": ms(percentile(values, 50)), "p99_ms": ms(percentile(values, 99)),
            "max_ms": ms(max(values) if values else None)}


def _tree(pid: int, children: bool) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)] if children else [root]
    except psutil.NoSuchProcess:
        return []


def _cpu_and_rss(pid: int, children: bool) -> tuple[float, int]:
    cpu, rss = 0.0, 0
    for index, process in enumerate(_tree(pid, children)):
        try:
            times = process.cpu_times()
            cpu += times.user + times.system
            if children and index == 0:
                # Children that have exited (a closed connection's backend) count here, so
                # the total never drops when one goes away.
                cpu += times.children_user + times.children_system
            rss += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return cpu, rss


class ResourceMonitor:
    """Samples named process trees every `interval` seconds while a load runs.

    CPU is reported in percent of one core (a single-threaded Python event loop saturates at
    100 %; the Go Temporal server and PostgreSQL may use both cores), averaged over the whole
    window and at the busiest interval; memory is the peak resident set. `machine` is all CPU
    use on the host (this machine is shared, so it can exceed the sum of ours).
    """

    # PostgreSQL does its work in one child process per connection. Nothing else counts its
    # children: the benchmark's own (py-spy, say) are not part of what it measures.
    WITH_CHILDREN = ("postgres",)

    def __init__(self, pids: dict[str, int], interval: float = 0.5):
        self.pids = {**pids, "bench client": os.getpid()}
        self.interval = interval
        self._task: Optional[asyncio.Task] = None
        self._samples: list[tuple[float, dict[str, tuple[float, int]], float]] = []

    def _sample(self) -> None:
        machine = psutil.cpu_times()
        busy = machine.user + machine.system + machine.nice + getattr(machine, "irq", 0) + getattr(machine, "softirq", 0)
        self._samples.append((time.monotonic(), {name: _cpu_and_rss(pid, name in self.WITH_CHILDREN)
                                                    for name, pid in self.pids.items()}, busy))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await asyncio.to_thread(self._sample)

    def start(self) -> None:
        self._samples.clear()
        self._sample()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> dict:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._sample()
        first, last = self._samples[0], self._samples[-1]
        wall = last[0] - first[0]
        report: dict = {}
        for name in self.pids:
            peak = 0.0
            for (t0, s0, _), (t1, s1, _) in zip(self._samples, self._samples[1:]):
                if t1 > t0:
                    peak = max(peak, (s1[name][0] - s0[name][0]) / (t1 - t0))
            report[name] = {
                "cpu_avg_pct": round(100 * (last[1][name][0] - first[1][name][0]) / wall, 1) if wall else None,
                "cpu_peak_pct": round(100 * peak, 1),
                "cpu_seconds": round(last[1][name][0] - first[1][name][0], 3),
                "rss_peak_mb": round(max(s[1][name][1] for s in self._samples) / 2**20, 1),
            }
        machine = round(100 * (last[2] - first[2]) / wall, 1) if wall else None
        ours = sum(r["cpu_avg_pct"] or 0 for r in report.values())
        # Work on the host that is not the stack nor the benchmark: other users of a shared machine.
        report["machine"] = {"cpu_avg_pct": machine, "cores": psutil.cpu_count(),
                             "outside_stack_pct": round(max(0.0, machine - ours), 1) if machine is not None else None}
        return report
