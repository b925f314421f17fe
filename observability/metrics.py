"""Prometheus metrics: ours, and the Temporal SDK's own from its runtime telemetry.

The SDK's metrics (`temporal_*`: polls, task slots, workflow and activity latencies, requests)
and what workflow code records through `workflow.metric_meter()` (the turns: replay-safe, so a
replayed turn is not counted twice) reach us through a `MetricBuffer` on the process's Temporal
runtime, which `TemporalMetrics` drains into the same registry as the metrics defined here. The
API serves the registry at `/metrics`; each worker on `WORKER_METRICS_PORT`.

Labels are bounded by design: kinds, outcomes, model ids from the settings, tool names from the
catalogue, route templates and status codes. Never a user, session or turn id.
"""

import logging
import math
import re
import threading
from typing import Iterable, Optional

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

log = logging.getLogger(__name__)

# Seconds, from a fast local write to a long turn.
TIME_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

# The API
HTTP_REQUESTS = Counter("copilot_http_requests", "HTTP requests answered, by route template and status code.",
                        ["method", "route", "status"])
HTTP_REQUEST_DURATION = Histogram("copilot_http_request_duration_seconds",
                                  "Time to answer an HTTP request (a stream: until it ends).", ["method", "route"],
                                  buckets=TIME_BUCKETS)
SSE_STREAMS_OPEN = Gauge("copilot_sse_streams_open", "SSE streams of turns being served now.")
TIME_TO_FIRST_TOKEN = Histogram("copilot_time_to_first_token_seconds",
                                "From a message's POST .../stream to the first text or reasoning delta sent back.",
                                buckets=TIME_BUCKETS)
FOLLOW_UPS_QUEUED = Counter("copilot_follow_ups_queued", "Messages queued into a running turn (answered 202).")
STOP_LATENCY = Histogram("copilot_stop_latency_seconds", "From a Stop request to its turn closed.",
                         buckets=TIME_BUCKETS)

# The worker's activities
TOKENS_STREAMED = Counter("copilot_tokens_streamed", "Text and reasoning deltas relayed from the model to the stream.",
                          ["kind"])
MODEL_ROUNDS = Counter("copilot_model_rounds", "Model rounds (one streamed completion each), by model and outcome.",
                       ["model", "outcome"])
MODEL_ROUND_DURATION = Histogram("copilot_model_round_duration_seconds", "Time of one model round.", ["model"],
                                 buckets=TIME_BUCKETS)
MODEL_TOKENS = Counter("copilot_model_tokens", "Tokens the provider reported, by model and type.", ["model", "type"])
MODEL_COST = Counter("copilot_model_cost_microdollars", "What the provider reported the rounds cost, in microdollars.",
                     ["model"])
TOOL_CALLS = Counter("copilot_tool_calls", "Tool calls run, by tool and outcome (`ok` or the error code).",
                     ["tool", "outcome"])
TOOL_CALL_DURATION = Histogram("copilot_tool_call_duration_seconds", "Time of one tool call.", ["tool"],
                               buckets=TIME_BUCKETS)
SANDBOX_CALLS = Counter("copilot_sandbox_calls", "Commands run by bash_exec, by sandbox and outcome.",
                        ["sandbox", "outcome"])
SANDBOX_CALL_DURATION = Histogram("copilot_sandbox_call_duration_seconds", "Time of one bash_exec command.",
                                  ["sandbox"], buckets=TIME_BUCKETS)

# Recorded by the turn workflow through Temporal's workflow metric meter (it may import nothing
# of ours, so it names them itself; tests/integration/test_metrics.py checks they appear here).
WORKFLOW_METRICS = ("copilot_turns_started_total", "copilot_turns_completed_total", "copilot_turns_failed_total",
                    "copilot_turns_stopped_total", "copilot_turn_duration_seconds")

_LABEL = re.compile(r"[^a-zA-Z0-9_]")
_OUTCOME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def outcome_label(code: Optional[str]) -> str:
    """`ok`, or an error code as a label: codes are identifiers our code defines; anything else is `error`."""
    if code is None:
        return "ok"
    return code if _OUTCOME.fullmatch(code) else "error"


class TemporalMetrics(Collector):
    """The SDK's buffered metric updates, folded into Prometheus counters, gauges and histograms.

    Drained at every scrape and once a second in the background (the buffer drops what it cannot
    hold). A metric's label sets may differ between samples (a request with and without a
    namespace): each sample carries its own labels."""

    def __init__(self, buffer: MetricBuffer, buckets: Iterable[float] = TIME_BUCKETS):
        self.buffer = buffer
        self.buckets = tuple(buckets)
        self._lock = threading.Lock()
        self._families: dict[str, tuple[str, str, str]] = {}  # name -> (type, help, exported name)
        self._values: dict[tuple[str, tuple], float] = {}
        self._histograms: dict[tuple[str, tuple], list] = {}  # -> [bucket counts..., sum, count]

    def drain(self) -> None:
        with self._lock:
            for update in self.buffer.retrieve_updates():
                metric = update.metric
                name = metric.name
                family = self._families.get(name)
                if family is None:
                    family = self._families[name] = self._family(metric)
                labels = tuple(sorted((_LABEL.sub("_", str(k)), str(v)) for k, v in update.attributes.items()
                                      if k != "service_name"))
                key = (name, labels)
                if family[0] == "counter":
                    self._values[key] = self._values.get(key, 0) + update.value
                elif family[0] == "gauge":
                    self._values[key] = update.value
                else:
                    self._observe(key, float(update.value))

    def _family(self, metric) -> tuple[str, str, str]:
        name = _LABEL.sub("_", metric.name)
        if metric.kind == BUFFERED_METRIC_KIND_COUNTER:
            return "counter", metric.description or name, name.removesuffix("_total")
        if metric.kind == BUFFERED_METRIC_KIND_GAUGE:
            return "gauge", metric.description or name, name
        if metric.unit == "s" and not name.endswith("_seconds"):
            name += "_seconds"
        return "histogram", metric.description or name, name

    def _observe(self, key: tuple[str, tuple], value: float) -> None:
        state = self._histograms.get(key)
        if state is None:
            state = self._histograms[key] = [0] * len(self.buckets) + [0.0, 0]
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                state[index] += 1
        state[-2] += value
        state[-1] += 1

    def collect(self) -> Iterable[Metric]:
        self.drain()
        with self._lock:
            metrics: dict[str, Metric] = {}
            for name, (kind, doc, exported) in self._families.items():
                metrics[name] = Metric(exported, doc, kind)
            for (name, labels), value in self._values.items():
                kind, _, exported = self._families[name]
                metrics[name].add_sample(exported + ("_total" if kind == "counter" else ""), dict(labels), value)
            for (name, labels), state in self._histograms.items():
                exported = self._families[name][2]
                metric = metrics[name]
                for bound, count in zip(self.buckets, state):
                    metric.add_sample(exported + "_bucket", {**dict(labels), "le": _bound(bound)}, count)
                metric.add_sample(exported + "_bucket", {**dict(labels), "le": "+Inf"}, state[-1])
                metric.add_sample(exported + "_sum", dict(labels), state[-2])
                metric.add_sample(exported + "_count", dict(labels), state[-1])
        return [m for m in metrics.values() if m.samples]


def _bound(value: float) -> str:
    return "+Inf" if math.isinf(value) else repr(float(value))


_runtime: Optional[Runtime] = None
_runtime_lock = threading.Lock()


def temporal_runtime() -> Runtime:
    """The process's Temporal runtime, its metrics buffered into our registry (created once)."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            buffer = MetricBuffer(200_000, MetricBufferDurationFormat.SECONDS)
            runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
            collector = TemporalMetrics(buffer)
            REGISTRY.register(collector)
            stop = threading.Event()

            def drain_every_second() -> None:
                while not stop.wait(1.0):
                    try:
                        collector.drain()
                    except Exception:  # never let metrics take a process down
                        log.exception("could not read the Temporal SDK's metrics")

            threading.Thread(target=drain_every_second, name="temporal-metrics", daemon=True).start()
            _runtime = runtime
        return _runtime


def serve_metrics(host: str, port: int) -> Optional[int]:
    """Serves the registry on `http://host:port/metrics` from a background thread (the worker's);
    a port in use is logged and skipped, never a reason not to work. Returns the port, or None."""
    if not port:
        return None
    try:
        start_http_server(port, addr=host)
    except OSError as problem:
        log.warning("metrics are not served on %s:%s: %s", host, port, problem)
        return None
    log.info("metrics served on http://%s:%s/metrics", host, port)
    return port
