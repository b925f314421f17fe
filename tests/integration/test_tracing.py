"""One turn is one trace: the HTTP request's span (continuing the caller's W3C `traceparent`, or
Sentry's `sentry-trace`), update-with-start, the workflow, each activity, the model call and the
tool, all under the caller's trace id (an in-memory exporter, on an API, a client and a worker
of their own with tracing on; the shared stack runs with tracing off)."""

import asyncio
import os
from contextlib import asynccontextmanager

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from api.main import create_app
from local.model import chunks
from local.stack.process import free_port
from observability.tracing import Tracing
from tests.support.extra_tools import TEST_TOOLS
from tests.support.helpers import marker, new_session
from tests.support.scripted_model import Stream, text_reply
from tests.support.servers import serve, shutdown
from tests.support.sse_client import read_events
from tests.support.users import make_user
from worker import build_worker
from workflows.turn_client import connect_temporal

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@asynccontextmanager
async def traced_stack(settings, exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider)
    own = settings.model_copy(update={"temporal_task_queue": settings.temporal_task_queue + "-traced"})
    client = await connect_temporal(own, tracing)
    worker = build_worker(client, own, TEST_TOOLS, tracing)
    running = asyncio.create_task(worker.run())
    port = free_port()
    server, task = await serve(create_app(own, TEST_TOOLS, tracing), port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            yield http
    finally:
        await shutdown(server, task)
        await worker.shutdown()
        await asyncio.gather(running, return_exceptions=True)


async def one_turn(http, user, scripted, headers: dict) -> str:
    tag = marker()
    scripted.script(tag,
                    Stream([chunks.text("Looking."), chunks.tool_call(0, "", call_id="call_t", name="get_current_time"),
                            chunks.tool_call(0, '{"timezone": "UTC"}'), chunks.finish("tool_calls"),
                            chunks.usage(1, 1, 0.0001)]),
                    text_reply("It is now."))
    session_id = await new_session(http, user)
    async with http.stream("POST", f"/api/chat/sessions/{session_id}/stream", json={"message": f"Time? {tag}"},
                           headers={**user.headers, **headers}) as response:
        assert response.status_code == 200
        events = await read_events(response)
    assert events[-1].data == "[DONE]"
    return session_id


def spans_of(exporter: InMemorySpanExporter, trace_id: str) -> list:
    return [span for span in exporter.get_finished_spans() if f"{span.context.trace_id:032x}" == trace_id]


async def settled(exporter: InMemorySpanExporter, trace_id: str, wanted: set[str]) -> list:
    """The trace's spans once those wanted have ended (workflow spans end as the workflow task does)."""
    for _ in range(200):
        spans = spans_of(exporter, trace_id)
        if wanted <= {span.name for span in spans}:
            return spans
        await asyncio.sleep(0.05)
    raise AssertionError(sorted({span.name for span in spans_of(exporter, trace_id)}))


def print_tree(spans: list) -> None:
    children: dict = {}
    for span in sorted(spans, key=lambda span: span.start_time):
        children.setdefault(span.parent.span_id if span.parent else None, []).append(span)

    def show(parent, depth: int) -> None:
        for span in children.get(parent, []):
            print(f"{'  ' * depth}{span.name} ({(span.end_time - span.start_time) / 1e6:.1f} ms)")
            show(span.context.span_id, depth + 1)

    show(int(CALLER_SPAN, 16), 0)


SPANS_OF_A_TURN = {
    "POST /api/chat/sessions/{session_id}/stream",
    "StartUpdateWithStartWorkflow:CopilotTurnWorkflow",
    "RunWorkflow:CopilotTurnWorkflow",
    "StartActivity:stream_model_round", "RunActivity:stream_model_round", "model.call",
    "StartActivity:run_tool", "RunActivity:run_tool", "tool get_current_time",
}


async def test_a_turn_is_one_trace_from_the_request_to_the_model_call(settings, scripted, exporter):
    user = make_user(settings)
    async with traced_stack(settings, exporter) as http:
        await one_turn(http, user, scripted, {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01",
                                              "baggage": "sentry-environment=test"})
        spans = await settled(exporter, CALLER_TRACE, SPANS_OF_A_TURN)
    by_name = {span.name: span for span in spans}
    if os.environ.get("PRINT_TRACE"):
        print_tree(spans)
    request = by_name["POST /api/chat/sessions/{session_id}/stream"]
    assert request.kind == SpanKind.SERVER and f"{request.parent.span_id:016x}" == CALLER_SPAN
    assert request.attributes["http.route"] == "/api/chat/sessions/{session_id}/stream"
    assert request.attributes["http.response.status_code"] == 200
    # Every span of the turn is in the caller's trace, parented within it.
    ids = {span.context.span_id for span in spans} | {int(CALLER_SPAN, 16)}
    assert all(span.parent is not None and span.parent.span_id in ids for span in spans)
    model = [span for span in spans if span.name == "model.call"]
    assert len(model) == 2 and {span.attributes["copilot.outcome"] for span in model} == {"ok"}
    assert model[0].attributes["gen_ai.request.model"] == settings.fast_model
    assert by_name["tool get_current_time"].attributes["copilot.outcome"] == "ok"
    # A model call is inside its activity's span, the activity inside the workflow's.
    run_round = by_name["RunActivity:stream_model_round"]
    assert any(span.parent.span_id == run_round.context.span_id for span in model)


async def test_a_sentry_trace_is_continued(settings, scripted, exporter):
    user = make_user(settings)
    sentry_trace = "0123456789abcdef0123456789abcdef"
    async with traced_stack(settings, exporter) as http:
        await one_turn(http, user, scripted, {"sentry-trace": f"{sentry_trace}-89abcdef01234567-1"})
        spans = await settled(exporter, sentry_trace, {"POST /api/chat/sessions/{session_id}/stream",
                                                       "RunActivity:stream_model_round", "model.call"})
    request = next(span for span in spans if span.name == "POST /api/chat/sessions/{session_id}/stream")
    assert f"{request.parent.span_id:016x}" == "89abcdef01234567"
