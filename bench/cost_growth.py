"""5. How a turn's cost grows with the session's history and with its tool rounds.

History: sessions are seeded straight in Postgres with N alternating user / assistant messages
(200 characters each), then one short turn runs; the direct baseline gets the same N messages in
its request, so the overhead column is what the orchestration adds for that history.

Tool rounds: the model calls `get_current_time` K times (one call per round), then answers. The
time per round, and the bytes the turn writes to its Temporal workflow history, show whether a
round costs the same at round 20 as at round 1. A workflow that re-read the stored history every
round, or re-sent a growing conversation to every activity, would show per-round cost and history
bytes per round growing with K and N (quadratic totals) rather than staying flat; the first
three tool rounds of a turn are compared with its last three for the same reason.
"""

import statistics

from sqlalchemy import insert
from temporalio.api.enums.v1 import EventType

from bench.metrics import ms
from bench.model_server import directive
from bench.stack import BenchStack
from bench.timeline import MODEL_ACTIVITY
from database import session_maker
from models.db import ChatMessage, utcnow

FILLER = ("durable workflows keep every turn safe while tokens stream to the screen " * 4)[:200]


def _history(count: int) -> list[dict]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": f"{i}: {FILLER}"[:200]} for i in range(count)]


async def _seed(stack: BenchStack, session_id: str, history: list[dict]) -> None:
    if not history:
        return
    now = utcnow()
    async with session_maker(stack.database_url).begin() as db:
        await db.execute(insert(ChatMessage.__table__), [
            {"session_id": session_id, "sequence": i + 1, "role": m["role"], "content": m["content"],
             "idempotency_key": f"seed:{i}", "created_at": now} for i, m in enumerate(history)])


async def _workflow_history(stack: BenchStack, session_id: str) -> dict:
    """Events and bytes of the session's latest turn in Temporal's history, and the time from
    each model round's scheduling to the next one's (a whole tool round)."""
    client = await stack.temporal()
    history = await client.get_workflow_handle(f"copilot-turn/{session_id}").fetch_history()
    rounds = [e.event_time.seconds + e.event_time.nanos / 1e9 for e in history.events
              if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
              and e.activity_task_scheduled_event_attributes.activity_type.name == MODEL_ACTIVITY]
    return {"events": len(history.events), "bytes": sum(e.ByteSize() for e in history.events),
            "round_seconds": [b - a for a, b in zip(rounds, rounds[1:])]}


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


async def _case(stack: BenchStack, messages: int, tool_rounds: int, repeats: int) -> dict:
    history = _history(messages)
    prompt = directive(words=10, tools=tool_rounds)
    system_ttft, direct_ttft, totals, histories, failures = [], [], [], [], 0
    for i in range(repeats):
        session_id, headers = await stack.new_session()
        await _seed(stack, session_id, history)
        ours = await stack.system_turn(session_id, headers, f"case {i} {prompt}")
        if not ours.ok:
            failures += 1
            continue
        system_ttft.append(ours.first_token)
        totals.append(ours.total)
        histories.append(await _workflow_history(stack, session_id))
        if tool_rounds == 0:
            theirs = await stack.direct_turn(f"case {i} {prompt}", history)
            if theirs.ok:
                direct_ttft.append(theirs.first_token)
    rounds = tool_rounds + 1
    total = _median(totals)
    # Linearity within the turn: the first tool rounds against the last ones.
    per_round = [h["round_seconds"] for h in histories if len(h["round_seconds"]) >= 2]
    first = _median([r for rs in per_round for r in rs[:3]])
    last = _median([r for rs in per_round for r in rs[-3:]])
    result = {
        "history_messages": messages, "tool_rounds": tool_rounds, "repeats": repeats, "failures": failures,
        "first_token_ms": ms(_median(system_ttft)), "turn_ms": ms(total),
        "per_round_ms": ms(total / rounds) if total else None,
        "first_rounds_ms": ms(first), "last_rounds_ms": ms(last),
        "workflow_history_events": histories[-1]["events"] if histories else None,
        "workflow_history_kb": round(_median([h["bytes"] for h in histories]) / 1024, 1) if histories else None,
    }
    if direct_ttft:
        result["direct_first_token_ms"] = ms(_median(direct_ttft))
        result["overhead_ms"] = ms(_median(system_ttft) - _median(direct_ttft))
    return result


async def run(stack: BenchStack, history_sizes: list[int], tool_rounds: list[int], repeats: int) -> dict:
    history = [await _case(stack, n, 0, repeats) for n in history_sizes]
    rounds = [await _case(stack, 0, k, repeats) for k in tool_rounds]
    # Both at their largest: a turn of many rounds on a long conversation.
    combined = await _case(stack, max(history_sizes), max(tool_rounds), 1)
    return {"history": history, "tool_rounds": rounds, "combined": combined}
