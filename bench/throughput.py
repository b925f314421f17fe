"""2. Streaming throughput: one client, one long answer, the model server producing as fast as it
can. Tokens per second is counted from the first to the last `text-delta` at the client, so
turn start-up (measured by the TTFT benchmark) does not dilute it."""

import statistics

from bench import plain_client
from bench.model_server import directive
from bench.stack import HOST, BenchStack


def _rate(result) -> float:
    span = result.token_times[-1] - result.token_times[0]
    return (len(result.token_times) - 1) / span if span > 0 else 0.0


async def run(stack: BenchStack, tokens: int, repeats: int) -> dict:
    prompt = directive(words=tokens)
    system, direct, failures, delivered = [], [], 0, []
    for i in range(repeats):
        session_id, headers = await stack.new_session()
        ours = await stack.system_turn(session_id, headers, f"long answer {i} {prompt}", timeout=600)
        theirs = await stack.direct_turn(f"long answer {i} {prompt}", timeout=600)
        if not (ours.ok and theirs.ok):
            failures += 1
            continue
        delivered.append(len(ours.token_times))
        system.append(_rate(ours))
        direct.append(_rate(theirs))
    best_system, best_direct = (max(system), max(direct)) if system else (None, None)
    # The same answer read by a plain client (parsing every event), timed from the request.
    plain_system, plain_direct = [], []
    for i in range(repeats):
        session_id, headers = await stack.new_session()
        plain_system.append(await plain_client.stream_rate(
            f"http://{HOST}:{stack.api_port}/api/chat/sessions/{session_id}/stream",
            {"message": f"plain {i} {prompt}"}, headers))
        plain_direct.append(await plain_client.stream_rate(
            f"http://{HOST}:{stack.baseline_port}/stream", {"message": f"plain {i} {prompt}", "history": []}))
    plain_ratio = statistics.median(s["tokens_per_s"] for s in plain_system) / \
        statistics.median(d["tokens_per_s"] for d in plain_direct)
    return {
        "plain_client": {"system": plain_system, "direct": plain_direct, "ratio": round(plain_ratio, 3)},
        "tokens": tokens, "repeats": repeats, "failures": failures, "tokens_delivered": delivered,
        "system_tokens_per_s": [round(r) for r in system], "direct_tokens_per_s": [round(r) for r in direct],
        "system_median": round(statistics.median(system)) if system else None,
        "direct_median": round(statistics.median(direct)) if direct else None,
        "ratio": round(statistics.median(system) / statistics.median(direct), 3) if system else None,
        "best_ratio": round(best_system / best_direct, 3) if system else None,
    }
