"""4. Turn start rate through update-with-start, and the 202 path for a busy session.

Start: `POST .../stream` answers its head once update-with-start has returned (the turn exists
and holds the message), so the time to the response head is the start latency; the client then
hangs up, and the turn runs on by itself, as it would after a dropped connection. `concurrency`
clients keep sending until `turns` sessions each have a turn.

Busy: a session streams a slow answer while its user sends follow-ups: each is queued in the
running turn's buffer by the same update-with-start and answered `202`, until the buffer is full
and the next one is refused with `429 buffer_full`.
"""

import asyncio
import time

from bench.metrics import OURS, ResourceMonitor, summary_ms
from bench.model_server import directive
from bench.stack import BenchStack

QUICK_ANSWER = directive(words=3)


async def _start_rate(stack: BenchStack, turns: int, concurrency: int) -> dict:
    sessions = [await stack.new_session() for _ in range(turns)]
    gate = asyncio.Semaphore(concurrency)

    async def start(index: int, session_id: str, headers: dict):
        async with gate:
            return await stack.system_turn(session_id, headers, f"start {index} {QUICK_ANSWER}", head_only=True)

    monitor = ResourceMonitor(stack.pids)
    monitor.start()
    # CPU per turn counts until every turn has finished, not only until it started streaming.
    whole = ResourceMonitor(stack.pids)
    whole.start()
    began = time.perf_counter()
    results = await asyncio.gather(*(start(i, s, h) for i, (s, h) in enumerate(sessions)))
    wall = max((r.headers_at or began) for r in results) - began
    resources = await monitor.stop()
    started = [r for r in results if r.status == 200 and r.failure is None]
    await stack.wait_idle([s for s, _ in sessions], dict(sessions))
    spent = await whole.stop()
    per_turn = {name: round(1000 * entry["cpu_seconds"] / len(started), 1) for name, entry in spent.items()
                if name != "machine" and started and (name in OURS or name.startswith("worker"))}
    return {"turns": turns, "concurrency": concurrency, "started": len(started),
            "cpu_ms_per_turn": {**per_turn, "all of ours": round(sum(per_turn.values()), 1)},
            "turns_per_s": round(len(started) / wall, 1) if wall > 0 else None,
            "start_latency": summary_ms([r.head_latency for r in started]),
            **({"resources": resources} if concurrency > 1 else {})}


async def _busy_sessions(stack: BenchStack, sessions: int, follow_ups: int) -> dict:
    opened = [await stack.new_session() for _ in range(sessions)]
    slow = directive(words=400, tps=50)  # 8 s: the turn is busy while the follow-ups arrive

    async def one(index: int, session_id: str, headers: dict) -> tuple[list, list, list]:
        first = await stack.system_turn(session_id, headers, f"busy {index} {slow}", head_only=True)
        if first.status != 200:
            return [], [], [first.status]
        queued, refused, other = [], [], []
        for n in range(follow_ups + 1):
            reply = await stack.system_turn(session_id, headers, f"follow-up {n} {QUICK_ANSWER}")
            if reply.status == 202:
                queued.append(reply.total)
            elif reply.status == 429 and b"buffer_full" in reply.body:
                refused.append(reply.total)
            else:
                other.append(reply.status)
        return queued, refused, other

    results = await asyncio.gather(*(one(i, s, h) for i, (s, h) in enumerate(opened)))
    await stack.wait_idle([s for s, _ in opened], dict(opened))
    return {"sessions": sessions, "follow_ups_each": follow_ups,
            "queued_202": summary_ms([t for q, _, _ in results for t in q]),
            "refused_429_buffer_full": summary_ms([t for _, r, _ in results for t in r]),
            "unexpected_statuses": [s for _, _, o in results for s in o]}


async def run(stack: BenchStack, turns: int, concurrency: int, busy_sessions: int, follow_ups: int = 10) -> dict:
    return {
        "sequential": await _start_rate(stack, max(10, turns // 4), 1),
        "concurrent": await _start_rate(stack, turns, concurrency),
        "busy_session": await _busy_sessions(stack, busy_sessions, follow_ups),
    }
