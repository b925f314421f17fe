"""Runs the benchmarks against one freshly started stack and writes the results.

    make bench                                  # everything, full size (about 14 minutes on 2 cores)
    .venv/bin/python -m bench --quick           # everything, small (a few minutes)
    .venv/bin/python -m bench --only ttft,throughput --ttft-turns 300
    .venv/bin/python -m bench --only concurrency --levels 50,200 --profile

Each run writes `bench/results/<UTC time>.json` (every figure, the CPU and memory of each
process, the settings) and `bench/results/latest.md` (the tables the README quotes).
"""

import argparse
import asyncio
import json
import math
import platform
import shlex
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

from bench import concurrency, cost_growth, report, throughput, ttft, turn_start
from bench.profile import Profiler
from bench.stack import ROOT, BenchStack

BENCHMARKS = ("ttft", "throughput", "burst", "concurrency", "turn_start", "cost_growth")
# Run again with every worker count after the first (scale-out): the load benchmarks.
SCALED = ("burst", "concurrency", "turn_start")
RESULTS = ROOT / "bench" / "results"


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small settings: a smoke run of every benchmark")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--ttft-turns", type=int)
    parser.add_argument("--first-token-delay-ms", type=float, default=0.0,
                        help="the model's own first-token delay (the same on both paths; it cancels out)")
    parser.add_argument("--throughput-tokens", type=int)
    parser.add_argument("--throughput-repeats", type=int)
    parser.add_argument("--levels", type=_ints, help="concurrent sessions, e.g. 50,200,500")
    parser.add_argument("--tokens-per-second", type=float, default=50.0, help="pacing of each concurrent answer")
    parser.add_argument("--steady-seconds", type=float, help="how long all concurrent streams overlap")
    parser.add_argument("--start-rate", type=float, default=50.0, help="concurrent turns started per second")
    parser.add_argument("--start-turns", type=int)
    parser.add_argument("--burst-sessions", type=int, default=50, help="sessions whose streams are sent at once")
    parser.add_argument("--workers", type=_ints, default=[1, 2],
                        help="worker process counts to run the load benchmarks with, e.g. 1,2")
    parser.add_argument("--history-sizes", type=_ints)
    parser.add_argument("--tool-rounds", type=_ints)
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the API and worker during throughput and one concurrency level")
    parser.add_argument("--profile-level", type=int, default=200, help="the concurrency level to profile")
    parser.add_argument("--worker-activity-slots", type=int,
                        help="run the worker with this WORKER_MAX_CONCURRENT_ACTIVITIES instead of its own (a what-if)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the stack's temporary folder (logs)")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "ttft_turns": 40 if quick else 200, "throughput_tokens": 5_000 if quick else 20_000,
        "throughput_repeats": 1 if quick else 3, "levels": [20, 50] if quick else [50, 200, 500],
        "steady_seconds": 5.0 if quick else 10.0, "start_turns": 40 if quick else 200,
        "history_sizes": [10, 100, 1000], "tool_rounds": [1, 5, 20],
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.selected = [b for b in args.only.split(",") if b]
    unknown = set(args.selected) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    return args


def machine() -> dict:
    cores = psutil.cpu_count()
    memory_gb = round(psutil.virtual_memory().total / 2**30)
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cores": cores, "memory_gb": memory_gb, "cpu": model, "python": platform.python_version(),
            "description": f"{cores} cores{', ' + model if model else ''}, {memory_gb} GB, Linux, Python "
                           f"{platform.python_version()}"}


async def run_load(stack: BenchStack, args: argparse.Namespace, step, profile: bool,
                   only: tuple[str, ...] | list[str] = SCALED) -> dict:
    """The load benchmarks (burst, concurrency, turn start) with the workers running now."""
    results: dict = {}
    selected = [name for name in args.selected if name in only]
    if "burst" in selected:
        step(f"burst: {args.burst_sessions} sessions created beforehand, every stream sent at once")
        results["burst"] = await concurrency.run_level(stack, args.burst_sessions, args.tokens_per_second,
                                                       args.steady_seconds, math.inf)
    if "concurrency" in selected:
        step(f"concurrency: {args.levels} sessions at {args.tokens_per_second:g} tokens/s")
        results["concurrency"] = await concurrency.run(
            stack, args.levels, args.tokens_per_second, args.steady_seconds, args.start_rate,
            args.out / "profiles" if profile else None, args.profile_level)
    if "turn_start" in selected:
        step(f"turn start: {args.start_turns} turns; busy sessions")
        results["turn_start"] = await turn_start.run(stack, args.start_turns, concurrency=10 if args.quick else 25,
                                                     busy_sessions=2 if args.quick else 10)
    return results


async def run_all(stack: BenchStack, args: argparse.Namespace) -> dict:
    results: dict = {}
    quick = args.quick

    def step(name: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {name}", flush=True)

    # The first turn of a fresh worker pays for imports and connections: not a sample.
    session_id, headers = await stack.new_session()
    await stack.system_turn(session_id, headers, "warm up")
    if "ttft" in args.selected:
        step(f"TTFT: {args.ttft_turns} turns, system and direct interleaved")
        results["ttft"] = await ttft.run(stack, args.ttft_turns, args.first_token_delay_ms)
    if "throughput" in args.selected:
        step(f"throughput: {args.throughput_tokens:,}-token answer x {args.throughput_repeats}")
        profiler = None
        if args.profile:
            profiler = Profiler({"api": stack.pids["API"], "worker": stack.pids["worker"]}, args.out / "profiles",
                                "throughput", seconds=10)
            await profiler.start()
        results["throughput"] = await throughput.run(stack, args.throughput_tokens, args.throughput_repeats)
        if profiler is not None:
            results["throughput"]["profile"] = await profiler.finish()
    results.update(await run_load(stack, args, step, profile=args.profile))
    if "cost_growth" in args.selected:
        step(f"cost growth: history {args.history_sizes}, tool rounds {args.tool_rounds}")
        results["cost_growth"] = await cost_growth.run(stack, args.history_sizes, args.tool_rounds,
                                                       repeats=2 if quick else 3)
    scaled = [name for name in args.selected if name in SCALED]
    for count in args.workers[1:]:
        while len(stack.workers) < count:
            stack.add_worker()
        await asyncio.sleep(3)  # the new workers poll before the load starts
        await stack.system_turn(*(await stack.new_session()), "warm up")
        step(f"scale-out: {count} workers")
        results.setdefault("scale_out", {})[str(count)] = await run_load(stack, args, step, profile=False,
                                                                         only=scaled)
    dead = stack.alive()
    if dead:
        results["crashed_processes"] = dead
    return results


def _stop_on_sigterm(_signum, _frame) -> None:
    # `timeout` and CI stop with SIGTERM: unwind, so the stack's servers are stopped too.
    raise SystemExit(143)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    args = parse_args(argv)
    started = datetime.now(timezone.utc)
    command = "make bench" if not argv else "python -m bench " + " ".join(shlex.quote(a) for a in argv)
    print("starting the stack (PostgreSQL, Redis, Temporal, model, baseline, worker, API) ...", flush=True)
    with BenchStack(keep=args.keep, worker_activity_slots=args.worker_activity_slots) as stack:
        if args.keep:
            print(f"  logs in {stack.root / 'logs'}")
        results = asyncio.run(run_all(stack, args))
    run = {"date": started.strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(), "command": command,
           "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
           "seconds": round((datetime.now(timezone.utc) - started).total_seconds()), "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(run, indent=2))
    summary = report.markdown(run)
    (args.out / "latest.md").write_text(summary)
    print(f"\n{summary}\nfull results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
