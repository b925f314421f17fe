"""3. Concurrency: N sessions streaming at once, each answer paced like a hosted model.

Turns start at `start_rate` per second (a burst of N update-with-starts would measure the start
path, which benchmark 4 does), and every answer lasts the ramp plus `steady_seconds`, so all N
streams overlap for at least `steady_seconds`. Inter-token delay is the gap between consecutive
`text-delta` parts at one client (the model sends one every 1/tps s); CPU and memory of every
process of the stack are sampled meanwhile.
"""

import asyncio
import math
import statistics
from pathlib import Path
from typing import Optional

from bench import timeline
from bench.metrics import ResourceMonitor, ms, our_cpu_seconds, percentile, summary_ms
from bench.model_server import directive
from bench.profile import Profiler
from bench.stack import BenchStack

# Percent of one core at which a single-threaded event loop counts as saturated.
SATURATED_PCT = 85.0
SINGLE_LOOP = ("API", "worker", "model server", "bench client")


async def _sessions(stack: BenchStack, count: int) -> list[tuple[str, dict]]:
    gate = asyncio.Semaphore(20)

    async def one() -> tuple[str, dict]:
        async with gate:
            return await stack.new_session()

    return await asyncio.gather(*(one() for _ in range(count)))


def _peak_overlap(intervals: list[tuple[float, float]]) -> int:
    points = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    live = peak = 0
    for _, step in points:
        live += step
        peak = max(peak, live)
    return peak


def saturation(resources: dict, sessions: int, peak_streams: int) -> list[str]:
    """What hit its limit: streams that could not all run at once (turns waited to start), a
    Python event loop near one core, or the machine near all its cores."""
    hot = []
    if peak_streams < 0.9 * sessions:
        hot.append(f"at most {peak_streams} of {sessions} streams at once")
    hot += [f"{name} ({r['cpu_avg_pct']:.0f}% of a core)" for name, r in resources.items()
            if name in SINGLE_LOOP and (r.get("cpu_avg_pct") or 0) >= SATURATED_PCT]
    machine = resources.get("machine", {})
    if (machine.get("cpu_avg_pct") or 0) >= 90 * machine.get("cores", 2):
        hot.append(f"machine ({machine['cpu_avg_pct']:.0f}% of {machine['cores']} cores)")
    return hot


def _load_figures(results: list, sessions: int, tps: float) -> dict:
    """Completion, inter-token delay and first token of one load, from the clients' timings."""
    gaps = [gap for r in results for gap in r.gaps()]
    # Once the last turn has its first token no turn is starting: the gaps after that show the
    # streaming path on its own, the rest include the cost of turns starting meanwhile.
    all_started = max((r.token_times[0] for r in results if r.token_times), default=0.0)
    steady = [b - a for r in results for a, b in zip(r.token_times, r.token_times[1:]) if a >= all_started]
    statuses: dict[str, int] = {}
    for r in results:
        key = r.failure or str(r.status)
        statuses[key] = statuses.get(key, 0) + 1
    completed = sum(r.ok for r in results)
    streams = [(r.token_times[0], r.token_times[-1]) for r in results if len(r.token_times) > 1]
    wall = max((end for _, end in streams), default=0) - min((start for start, _ in streams), default=0)
    delivered = sum(len(r.token_times) for r in results)
    return {
        "completed": completed, "errors": sessions - completed, "statuses": statuses,
        "error_parts": sum(r.errors for r in results), "peak_concurrent_streams": _peak_overlap(streams),
        "tokens_delivered": delivered,
        "aggregate_tokens_per_s": round(delivered / wall) if wall > 0 else None,
        "inter_token": {**summary_ms(gaps), "p90_ms": ms(percentile(gaps, 90)), "ideal_ms": round(1000 / tps, 1)},
        "inter_token_after_all_started": {**summary_ms(steady), "p90_ms": ms(percentile(steady, 90))},
        "first_token": summary_ms([r.first_token for r in results if r.first_token is not None]),
    }


async def _load(count: int, start_rate: float, turn, on_first=None) -> list:
    """`count` turns, started `start_rate` per second, each read to its end."""

    async def client(index: int):
        await asyncio.sleep(index / start_rate)
        if index == 0 and on_first is not None:
            await on_first()
        return await turn(index)

    return await asyncio.gather(*(client(i) for i in range(count)))


async def run_level(stack: BenchStack, sessions: int, tps: float, steady_seconds: float, start_rate: float,
                    profile_dir: Optional[Path] = None, direct: bool = True) -> dict:
    ramp = sessions / start_rate
    words = int(tps * (ramp + steady_seconds))
    timeout = ramp + 3 * words / tps + 60
    prompt = directive(words=words, tps=tps)
    opened = await _sessions(stack, sessions)
    monitor = ResourceMonitor(stack.pids)
    profiler = None
    if profile_dir is not None:
        profiler = Profiler({"api": stack.pids["API"], "worker": stack.pids["worker"]}, profile_dir,
                            f"concurrency-{sessions}", seconds=min(20, steady_seconds + ramp))
    monitor.start()

    async def system_turn(index: int):
        session_id, headers = opened[index]
        return await stack.system_turn(session_id, headers, f"stream {index} {prompt}", timeout=timeout)

    results = await _load(sessions, start_rate, system_turn, profiler.start if profiler is not None else None)
    resources = await monitor.stop()
    profile = await profiler.finish() if profiler is not None else None
    figures = _load_figures(results, sessions, tps)
    # Where the first-token time went, from the Temporal histories of a sample of the turns.
    sample = [(session_id, r) for (session_id, _), r in zip(opened, results) if r.ok][::max(1, sessions // 25)]
    phases = [p for p in [await timeline.phases(stack, session_id, r) for session_id, r in sample] if p]
    still_running = await stack.wait_idle([s for s, _ in opened], {s: h for s, h in opened}, timeout=180)
    level = {
        "sessions": sessions, "tokens_per_s_each": tps, "answer_tokens": words,
        "start_rate_per_s": start_rate if math.isfinite(start_rate) else None,
        **figures, "still_running_after": still_running, "tokens_expected": words * sessions,
        "first_token_breakdown_p50_ms": {phase: ms(statistics.median(p[phase] for p in phases))
                                         for phase in timeline.PHASES} if phases else None,
        "resources": resources, "saturated": saturation(resources, sessions, figures["peak_concurrent_streams"]),
        **({"profile": profile} if profile else {}),
    }
    if direct:
        # The same load through the direct baseline: one process relaying the model, as a
        # copilot without orchestration would; it shows what the model server and one Python
        # process carry at all on this machine.
        monitor = ResourceMonitor(stack.pids)
        monitor.start()
        baseline = await _load(sessions, start_rate, lambda index: stack.direct_turn(
            f"stream {index} {prompt}", timeout=timeout))
        resources = await monitor.stop()
        level["direct"] = {**_load_figures(baseline, sessions, tps),
                           "cpu_avg_pct": {name: resources[name]["cpu_avg_pct"] for name in ("baseline", "model server")}}
        # CPU per streamed token: every process of ours against the baseline's one process.
        ours = our_cpu_seconds(level["resources"]) / max(1, level["tokens_delivered"])
        theirs = resources["baseline"]["cpu_seconds"] / max(1, level["direct"]["tokens_delivered"])
        level["cpu_us_per_token"] = {"system": round(1e6 * ours, 1), "direct": round(1e6 * theirs, 1),
                                     "ratio": round(ours / theirs, 2) if theirs else None}
    return level


async def run(stack: BenchStack, levels: list[int], tps: float, steady_seconds: float, start_rate: float,
              profile_dir: Optional[Path] = None, profile_level: Optional[int] = None) -> dict:
    out = []
    for sessions in levels:
        result = await run_level(stack, sessions, tps, steady_seconds, start_rate,
                                 profile_dir if sessions == profile_level else None)
        out.append(result)
        direct = result.get("direct")
        print(f"  concurrency {sessions}: completed {result['completed']}/{sessions}, inter-token p99 "
              f"{result['inter_token']['p99_ms']} ms, saturated: {', '.join(result['saturated']) or 'nothing'}"
              + (f"; direct: completed {direct['completed']}, inter-token p99 {direct['inter_token']['p99_ms']} ms"
                 if direct else ""), flush=True)
    return {"levels": out}
