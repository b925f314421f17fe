"""1. Time to first token: `POST .../stream` to the first `text-delta` at the client, through
the whole system and through the direct baseline, one turn at a time (an unloaded system), the
two paths interleaved so drift on a shared machine hits both alike. Each system turn has its own
session, so history never grows between samples."""

import statistics

from bench import timeline
from bench.metrics import ms, percentile, summary_ms
from bench.model_server import directive
from bench.stack import BenchStack

# Turns whose Temporal history is read for the breakdown of where the time goes.
BREAKDOWN_TURNS = 30


async def run(stack: BenchStack, turns: int, first_token_delay_ms: float) -> dict:
    prompt = directive(words=10, delay_ms=first_token_delay_ms)
    system, direct, failures, breakdown = [], [], 0, []
    for i in range(turns + 1):
        session_id, headers = await stack.new_session()
        ours = await stack.system_turn(session_id, headers, f"question {i} {prompt}")
        theirs = await stack.direct_turn(f"question {i} {prompt}")
        if i == 0:
            continue  # the warm-up: first connections, first workflow task of a fresh worker
        if ours.ok and theirs.ok and ours.first_token is not None and theirs.first_token is not None:
            system.append(ours.first_token)
            direct.append(theirs.first_token)
            if i > turns - BREAKDOWN_TURNS:
                breakdown.append(await timeline.phases(stack, session_id, ours))
        else:
            failures += 1
    # Overhead per sample pairs each system turn with the direct turn right after it.
    overhead = [s - d for s, d in zip(system, direct)]
    return {
        "turns": turns, "failures": failures, "model_first_token_delay_ms": first_token_delay_ms,
        "system": summary_ms(system), "direct": summary_ms(direct),
        "overhead": {"p50_ms": ms(percentile(system, 50) - percentile(direct, 50)) if system else None,
                     "p99_ms": ms(percentile(system, 99) - percentile(direct, 99)) if system else None,
                     "paired_p50_ms": ms(percentile(overhead, 50)), "paired_p99_ms": ms(percentile(overhead, 99)),
                     "mean_ms": ms(statistics.fmean(overhead)) if overhead else None},
        "ratio_p50": round(percentile(system, 50) / percentile(direct, 50), 2) if system else None,
        "ratio_p99": round(percentile(system, 99) / percentile(direct, 99), 2) if system else None,
        "breakdown_p50_ms": {phase: ms(statistics.median(b[phase] for b in breakdown if b))
                             for phase in timeline.PHASES} if any(breakdown) else None,
    }
