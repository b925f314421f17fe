"""What the sandbox adds to a command's start: `true` through `run_in_sandbox` against a plain
`bash -c true` subprocess, run one after another, with the median and 90th percentile of each.

    python -m bench.sandbox_startup [--calls 50]

The sandboxed figure is the whole call as the tool sees it: measuring the workspace for its
quota, building the sandbox, running the command, and waiting until every process is gone.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Awaitable, Callable

from sandbox import SandboxLimits, probe, run_in_sandbox

WARM_UP_CALLS = 3


async def _timed(calls: int, call: Callable[[], Awaitable[None]]) -> list[float]:
    for _ in range(WARM_UP_CALLS):
        await call()
    durations = []
    for _ in range(calls):
        began = time.perf_counter()
        await call()
        durations.append(time.perf_counter() - began)
    return durations


def _summary(name: str, durations: list[float]) -> str:
    median = statistics.median(durations) * 1000
    p90 = statistics.quantiles(durations, n=10)[-1] * 1000
    return f"{name:<28} median {median:7.2f} ms   p90 {p90:7.2f} ms   ({len(durations)} calls)"


async def main(calls: int) -> None:
    availability = probe()
    if not availability.available:
        raise SystemExit(f"the sandbox cannot run here: {availability.reason}")
    limits = SandboxLimits(timeout_seconds=30)
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as directory:
        workspace = Path(directory)

        async def sandboxed() -> None:
            result = await run_in_sandbox("true", workspace, limits)
            if result.exit_code != 0:
                raise SystemExit(f"`true` failed in the sandbox: {result}")

        async def plain() -> None:
            process = await asyncio.create_subprocess_exec("bash", "-c", "true")
            if await process.wait() != 0:
                raise SystemExit("`bash -c true` failed")

        in_sandbox = await _timed(calls, sandboxed)
        unsandboxed = await _timed(calls, plain)
    print(f"engine: {availability.engine}")
    print(_summary("run_in_sandbox('true')", in_sandbox))
    print(_summary("bash -c true (subprocess)", unsandboxed))
    overhead = (statistics.median(in_sandbox) - statistics.median(unsandboxed)) * 1000
    print(f"{'added by the sandbox':<28} median {overhead:7.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    asyncio.run(main(parser.parse_args().calls))
