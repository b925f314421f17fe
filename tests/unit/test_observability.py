"""The pieces of observability on their own: the log formats and their ids, the trace propagation
(W3C, Sentry, baggage), tracing off when nothing is configured, and the Temporal SDK's buffered
metrics as Prometheus exposition."""

import json
import logging
from dataclasses import dataclass, field

from opentelemetry import baggage, trace
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, generate_latest
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import BUFFERED_METRIC_KIND_COUNTER, BUFFERED_METRIC_KIND_GAUGE, BUFFERED_METRIC_KIND_HISTOGRAM

from api.main import api_tracing
from observability import logs
from observability.metrics import TemporalMetrics, outcome_label
from observability.tracing import PROPAGATOR, Tracing, callers_trace_id, tracing_from_settings
from worker import worker_tracing
from workflows.copilot_turn import turn_workflow_id

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def record(message: str = "turn of session %s ended", *args, **extra) -> logging.LogRecord:
    made = logging.LogRecord("activities.llm", logging.WARNING, __file__, 1, message, args or ("s-1",), None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_a_json_line_has_every_id_field_and_the_context_fills_them():
    formatter = logs.JsonFormatter("worker")
    line = json.loads(formatter.format(record()))
    assert {"time", "level", "service", "logger", "message", *logs.FIELDS} <= set(line)
    assert line["message"] == "turn of session s-1 ended" and line["request_id"] is None
    token = logs.open_context(request_id="req-1", session_id="s-1")
    try:
        logs.annotate(turn_id="t-1", trace_id=TRACE)
        line = json.loads(formatter.format(record()))
    finally:
        logs.close_context(token)
    assert [line[name] for name in logs.FIELDS] == ["req-1", "s-1", "t-1", TRACE]


def test_a_workflows_line_names_its_session_and_turn_and_the_request_that_started_it():
    logs.remember_run("run-7", {"request_id": "req-7", "trace_id": TRACE})
    line = json.loads(logs.JsonFormatter("worker").format(record(temporal_workflow={
        "workflow_id": turn_workflow_id("s-7"), "run_id": "run-7"})))
    assert [line[name] for name in logs.FIELDS] == ["req-7", "s-7", "run-7", TRACE]
    assert turn_workflow_id("x").removesuffix("x") == logs.TURN_WORKFLOW_PREFIX


def test_key_value_lines_quote_what_needs_it():
    text = logs.KeyValueFormatter("api").format(record('said "%s"', "a b"))
    assert 'activities.llm message="said \\"a b\\"" request_id=- session_id=- turn_id=- trace_id=-' in text
    assert text.split(" ")[1] == "WARNING"


def test_tracing_is_off_and_costs_nothing_when_no_endpoint_is_set(settings):
    assert not api_tracing(settings).enabled and not worker_tracing(settings).enabled
    off = tracing_from_settings("", "copilot-api")
    assert off.temporal_interceptors() == [] and isinstance(off.tracer, trace.NoOpTracer)
    with off.span("model.call", {"a": 1}) as span:
        span.set_attribute("b", 2)  # a stand-in: nothing is made
    on = Tracing(TracerProvider())
    assert [type(i) for i in on.temporal_interceptors()] == [TracingInterceptor]


def test_the_callers_trace_and_baggage_are_continued():
    context = PROPAGATOR.extract({"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01",
                                  "baggage": "sentry-environment=prod,sentry-public_key=abc"})
    parent = trace.get_current_span(context).get_span_context()
    assert f"{parent.trace_id:032x}" == TRACE and parent.trace_flags.sampled
    assert baggage.get_all(context) == {"sentry-environment": "prod", "sentry-public_key": "abc"}
    # What Temporal's interceptor carries into the workflow and its activities: the same trace and baggage.
    from temporalio.contrib.opentelemetry._interceptor import default_text_map_propagator

    carrier: dict[str, str] = {}
    assert isinstance(default_text_map_propagator, CompositePropagator)
    default_text_map_propagator.inject(carrier, context)
    assert TRACE in carrier["traceparent"] and "sentry-environment=prod" in carrier["baggage"]


def test_a_sentry_trace_is_read_and_a_traceparent_wins_over_it():
    sentry = PROPAGATOR.extract({"sentry-trace": f"{TRACE}-89abcdef01234567-0"})
    span = trace.get_current_span(sentry).get_span_context()
    assert f"{span.trace_id:032x}" == TRACE and f"{span.span_id:016x}" == "89abcdef01234567"
    assert not span.trace_flags.sampled  # the caller decided not to sample
    both = PROPAGATOR.extract({"sentry-trace": f"{'1' * 32}-89abcdef01234567-1",
                               "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"})
    assert f"{trace.get_current_span(both).get_span_context().trace_id:032x}" == TRACE
    assert PROPAGATOR.extract({"sentry-trace": "not a trace"}) == PROPAGATOR.extract({})
    assert callers_trace_id({"sentry-trace": f"{TRACE}-89abcdef01234567"}) == TRACE
    assert callers_trace_id({"traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01"}) is None


@dataclass
class Metric:
    name: str
    kind: int
    unit: str = None
    description: str = None


@dataclass
class Update:
    metric: Metric
    value: float
    attributes: dict = field(default_factory=dict)


class Buffer:
    def __init__(self, updates):
        self.updates = updates

    def retrieve_updates(self):
        updates, self.updates = self.updates, []
        return updates


def test_the_sdks_buffered_metrics_become_prometheus_series():
    requests = Metric("temporal_request", BUFFERED_METRIC_KIND_COUNTER)
    slots = Metric("temporal_worker_task_slots_available", BUFFERED_METRIC_KIND_GAUGE)
    latency = Metric("temporal_activity_execution_latency", BUFFERED_METRIC_KIND_HISTOGRAM, unit="s")
    turns = Metric("copilot_turns_started", BUFFERED_METRIC_KIND_COUNTER, description="Turns started, by kind.")
    collector = TemporalMetrics(Buffer([
        Update(requests, 1, {"operation": "StartWorkflowExecution", "service_name": "temporal-core-sdk"}),
        Update(requests, 2, {"operation": "StartWorkflowExecution", "service_name": "temporal-core-sdk"}),
        Update(requests, 1, {"operation": "GetSystemInfo"}),
        Update(slots, 100, {"worker_type": "ActivityWorker"}), Update(slots, 99, {"worker_type": "ActivityWorker"}),
        Update(latency, 0.02, {"activity_type": "run_tool"}), Update(latency, 3.0, {"activity_type": "run_tool"}),
        Update(turns, 1, {"kind": "turn", "eager": True}),
    ]), buckets=(0.1, 1.0))
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    assert 'temporal_request_total{operation="StartWorkflowExecution"} 3.0' in text
    assert 'temporal_request_total{operation="GetSystemInfo"} 1.0' in text
    assert 'temporal_worker_task_slots_available{worker_type="ActivityWorker"} 99.0' in text
    assert 'temporal_activity_execution_latency_seconds_bucket{activity_type="run_tool",le="0.1"} 1.0' in text
    assert 'temporal_activity_execution_latency_seconds_bucket{activity_type="run_tool",le="+Inf"} 2.0' in text
    assert 'temporal_activity_execution_latency_seconds_sum{activity_type="run_tool"} 3.02' in text
    assert '# HELP copilot_turns_started_total Turns started, by kind.' in text
    assert 'copilot_turns_started_total{eager="True",kind="turn"} 1.0' in text
    assert "service_name" not in text


def test_outcome_labels_are_codes_or_error():
    assert [outcome_label(c) for c in (None, "permission_denied", "Tool said: <x>", "a" * 60)] == [
        "ok", "permission_denied", "error", "error"]
