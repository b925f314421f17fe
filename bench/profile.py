"""py-spy sampling of the API and worker processes while a benchmark load runs (`--profile`).

py-spy attaches from outside, so the processes run unmodified code; it writes collapsed stacks
(one line per distinct stack, with its sample count), which `top_frames` condenses into where the
time goes: the functions most often on top of the stack (self time) and the project's own
functions most often anywhere on it (inclusive time), with the openai client's parsing and the workflow sandbox
alongside, as they are the worker's other big costs.
"""

import asyncio
import collections
import shutil
import sys
from pathlib import Path
from typing import Optional

from bench.stack import ROOT

PROJECT_DIRS = ("api/", "activities/", "stream_relay/", "workflows/", "conversation/", "billing/", "limits/",
                "worker.py", "models/")


def py_spy() -> Optional[str]:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


class Profiler:
    """Samples each named process for `seconds` into `<out_dir>/<label>-<name>.txt`."""

    def __init__(self, pids: dict[str, int], out_dir: Path, label: str, seconds: float, rate: int = 200):
        self.pids, self.out_dir, self.label, self.seconds, self.rate = pids, out_dir, label, seconds, rate
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.files: dict[str, Path] = {}

    async def start(self) -> bool:
        binary = py_spy()
        if binary is None:
            print("py-spy is not installed: pip install -e '.[bench]'", file=sys.stderr)
            return False
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            path = self.out_dir / f"{self.label}-{name.replace(' ', '-')}.txt"
            self.files[name] = path
            # --nonblocking: sampling never pauses the process, so it does not distort the load.
            self.processes[name] = await asyncio.create_subprocess_exec(
                binary, "record", "--pid", str(pid), "--duration", str(int(self.seconds)), "--rate", str(self.rate),
                "--format", "raw", "--nonblocking", "--output", str(path),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        return True

    async def finish(self) -> dict:
        report = {}
        for name, process in self.processes.items():
            try:
                await asyncio.wait_for(process.wait(), self.seconds + 30)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
            if self.files[name].exists():
                report[name] = {"file": str(self.files[name].relative_to(ROOT)) if self.files[name].is_relative_to(ROOT)
                                else str(self.files[name]), **top_frames(self.files[name])}
        return report


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like `function (path/to/file.py:123)`; drop the line number.
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3.11/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


# Leaf frames of a thread that waits for work: an idle event loop or thread pool, not time spent.
IDLE_LEAVES = ("EpollSelector.select (selectors.py)", "Condition.wait (threading.py)")


def top_frames(path: Path, count: int = 12) -> dict:
    """Shares of the busy samples (idle waits left out)."""
    self_time: collections.Counter = collections.Counter()
    inclusive: collections.Counter = collections.Counter()
    total = idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, samples = line.rpartition(" ")
        if not samples.isdigit():
            continue
        n = int(samples)
        frames = [_frame_name(f) for f in stack.split(";") if f]
        if frames and frames[-1] in IDLE_LEAVES:
            idle += n
            continue
        total += n
        if frames:
            self_time[frames[-1]] += n
        for frame in set(frames):
            if any(f"({d}" in frame for d in PROJECT_DIRS) or "openai/" in frame or "workflow_sandbox" in frame:
                inclusive[frame] += n
    if not total:
        return {"samples": 0}
    return {"samples": total, "idle_samples": idle,
            "self": [(f, round(100 * n / total, 1)) for f, n in self_time.most_common(count)],
            "project_inclusive": [(f, round(100 * n / total, 1)) for f, n in inclusive.most_common(count)]}
