"""Prometheus metrics move with the work: scraped from the API's /metrics and from a worker's
endpoint before and after a run (a turn with reasoning, text and two tool calls, a bash command
among them; then a long answer, a follow-up queued meanwhile, Stop, and the turn the follow-up
opens; a turn the provider refuses), the counters of turns, rounds, tokens, cost, tools, the sandbox, follow-ups, stops, time
to first token and the Temporal SDK's own metrics have all grown. No label holds a user, session
or turn id."""

import re

import httpx
from prometheus_client.parser import text_string_to_metric_families

from local.model import chunks
from local.stack.process import free_port
from observability.metrics import WORKFLOW_METRICS, serve_metrics
from tests.support.helpers import eventually, follow, marker, new_session, queue, send, slow_text, start_turn, stop
from tests.support.scripted_model import Fail, Stream, text_reply

MODEL = "openai/gpt-test"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def total(scrape: dict, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    return sum(value for (sample, sample_labels), value in scrape.items()
               if sample == name and set(labels.items()) <= set(sample_labels))


async def scrape(url: str) -> dict:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def test_metrics_are_served_and_move_after_a_turn(http, user, scripted, api_url, settings):
    worker_port = serve_metrics("127.0.0.1", free_port())
    worker_url, api_metrics = f"http://127.0.0.1:{worker_port}/metrics", f"{api_url}/metrics"
    before, before_worker = await scrape(api_metrics), await scrape(worker_url)

    tag = marker()
    scripted.script(
        tag,
        Stream([chunks.reasoning("Let me see."), chunks.text("Checking."),
                chunks.tool_call(0, "", call_id="call_m1", name="get_current_time"),
                chunks.tool_call(0, '{"timezone": "UTC"}'),
                chunks.tool_call(1, "", call_id="call_m2", name="bash_exec"),
                chunks.tool_call(1, '{"command": "echo hi"}'),
                chunks.finish("tool_calls"), chunks.usage(7, 3, 0.0002)]),
        text_reply("It is now."),
        slow_text(200),
        text_reply("The follow-up's answer."),
    )
    session_id = await new_session(http, user)
    events = await send(http, user, session_id, f"Time? {tag}")
    assert events[-1].data == "[DONE]"
    await start_turn(http, user, session_id, "A long one, please")
    queued = await queue(http, user, session_id, "And then this")
    assert queued.status_code == 202, queued.text
    assert (await stop(http, user, session_id))["stopped"] is True
    await follow(http, user, session_id)  # the turn the follow-up opened, to its end
    failing = marker()
    scripted.script(failing, Fail(400))  # refused by the provider: the turn fails
    await send(http, user, await new_session(http, user), f"Fail {failing}")

    def grew(scraped: dict) -> dict[str, float]:
        return {
            "turns started": total(scraped, "copilot_turns_started_total", kind="turn")
            - total(before, "copilot_turns_started_total", kind="turn"),
            "turns completed": total(scraped, "copilot_turns_completed_total", kind="turn")
            - total(before, "copilot_turns_completed_total", kind="turn"),
            "turns stopped": total(scraped, "copilot_turns_stopped_total", kind="turn")
            - total(before, "copilot_turns_stopped_total", kind="turn"),
            "turns failed": total(scraped, "copilot_turns_failed_total", kind="turn")
            - total(before, "copilot_turns_failed_total", kind="turn"),
            "turn durations": total(scraped, "copilot_turn_duration_seconds_count", kind="turn")
            - total(before, "copilot_turn_duration_seconds_count", kind="turn"),
        }

    after = await eventually(lambda: scrape(api_metrics),
                             lambda s: all(v >= n for v, n in zip(grew(s).values(), (4, 2, 1, 1, 4))), timeout=15)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("copilot_model_rounds_total", model=MODEL, outcome="ok") >= 3
    assert delta("copilot_model_rounds_total", model=MODEL, outcome="refused") == 1
    assert (delta("copilot_model_rounds_total", model=MODEL, outcome="stopped")
            + delta("copilot_model_rounds_total", model=MODEL, outcome="cancelled")) >= 1  # the stopped one
    assert delta("copilot_model_round_duration_seconds_count", model=MODEL) >= 4
    assert delta("copilot_model_tokens_total", model=MODEL, type="prompt") >= 7
    assert delta("copilot_model_tokens_total", model=MODEL, type="completion") >= 3
    assert delta("copilot_model_cost_microdollars_total", model=MODEL) >= 200
    assert delta("copilot_tokens_streamed_total", kind="text") >= 3
    assert delta("copilot_tokens_streamed_total", kind="reasoning") >= 1
    assert delta("copilot_tool_calls_total", tool="get_current_time", outcome="ok") == 1
    assert delta("copilot_tool_call_duration_seconds_count", tool="get_current_time") == 1
    assert delta("copilot_tool_calls_total", tool="bash_exec") == 1
    assert delta("copilot_sandbox_calls_total") == 1
    assert delta("copilot_follow_ups_queued_total") == 1
    assert delta("copilot_stop_latency_seconds_count") == 1
    assert delta("copilot_time_to_first_token_seconds_count") >= 2
    assert delta("copilot_http_requests_total", method="POST", route="/api/chat/sessions/{session_id}/stream",
                 status="200") >= 2
    assert delta("copilot_http_requests_total", method="POST", route="/api/chat/sessions/{session_id}/stream",
                 status="202") == 1
    assert ("copilot_sse_streams_open", ()) in after
    # The Temporal SDK's own, from its runtime: client requests, worker tasks, activity latencies.
    assert delta("temporal_request_total") > 0
    assert delta("temporal_activity_execution_latency_seconds_count", activity_type="stream_model_round") >= 3
    assert delta("temporal_workflow_task_execution_latency_seconds_count") > 0
    for name in WORKFLOW_METRICS:
        assert any(sample.startswith(name.removesuffix("_total").removesuffix("_seconds")) for sample, _ in after), name

    # The worker's endpoint serves the same kinds of metrics (here the same process and registry).
    worker_after = await scrape(worker_url)
    assert total(worker_after, "copilot_model_rounds_total") > total(before_worker, "copilot_model_rounds_total")
    assert total(worker_after, "temporal_workflow_task_execution_latency_seconds_count") > 0

    # Bounded labels: no series names a user, a session or a turn.
    ids = {user.id, session_id, *(e.part.get("messageId", "") for e in events if e.part)} - {""}
    for (name, labels) in after:
        for key, value in labels:
            assert value not in ids, (name, key, value)
            assert not re.fullmatch(r"[0-9a-f-]{36}", value), (name, key, value)
