"""OpenTelemetry traces: from the HTTP request (continuing the caller's W3C `traceparent`, or
Sentry's `sentry-trace`, and `baggage`) through update-with-start into the workflow and each
activity (Temporal's `TracingInterceptor`), down to the model call and each tool.

Exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; when it is not, there is no
tracer provider, no interceptor and no span: tracing costs nothing. Tests hand in a provider of
their own (an in-memory exporter)."""

import re
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Optional

from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

SENTRY_TRACE_HEADER = "sentry-trace"
_SENTRY_TRACE = re.compile(r"^[ \t]*([0-9a-f]{32})-([0-9a-f]{16})(?:-([01]))?[ \t]*$")
_TRACEPARENT = re.compile(r"^[ \t]*[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


class SentryTracePropagator(TextMapPropagator):
    """Sentry's `sentry-trace: <trace id>-<span id>[-<sampled>]`, read as the remote parent (when no
    `traceparent` says otherwise) and written beside it, so a Sentry front end's trace goes on here."""

    def extract(self, carrier: CarrierT, context: Optional[Context] = None,
                getter: Getter[CarrierT] = default_getter) -> Context:
        context = context if context is not None else Context()
        values = getter.get(carrier, SENTRY_TRACE_HEADER)
        match = _SENTRY_TRACE.match(values[0]) if values else None
        if match is None:
            return context
        trace_id, span_id = int(match.group(1), 16), int(match.group(2), 16)
        if not trace_id or not span_id:
            return context
        sampled = match.group(3) != "0"  # absent: the caller left the decision to us
        parent = SpanContext(trace_id, span_id, is_remote=True,
                             trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT))
        return trace.set_span_in_context(NonRecordingSpan(parent), context)

    def inject(self, carrier: CarrierT, context: Optional[Context] = None,
               setter: Setter[CarrierT] = default_setter) -> None:
        span_context = trace.get_current_span(context).get_span_context()
        if span_context.is_valid:
            setter.set(carrier, SENTRY_TRACE_HEADER, f"{span_context.trace_id:032x}-{span_context.span_id:016x}-"
                                                     f"{1 if span_context.trace_flags.sampled else 0}")

    @property
    def fields(self) -> set[str]:
        return {SENTRY_TRACE_HEADER}


# Sentry's first, so a `traceparent` sent with it wins; baggage (Sentry's `sentry-*` entries too) goes along.
PROPAGATOR = CompositePropagator([SentryTracePropagator(), TraceContextTextMapPropagator(), W3CBaggagePropagator()])


def callers_trace_id(headers: Mapping[str, str]) -> Optional[str]:
    """The trace id a caller sent (`traceparent`, else `sentry-trace`), for logs when we do not trace."""
    for header, pattern in (("traceparent", _TRACEPARENT), (SENTRY_TRACE_HEADER, _SENTRY_TRACE)):
        match = pattern.match(headers.get(header, ""))
        if match and int(match.group(1), 16):
            return match.group(1)
    return None


class Tracing:
    """This process's tracing: a tracer from `provider`, or nothing at all (`enabled` False)."""

    def __init__(self, provider: Optional[Any] = None):
        self.provider = provider
        self.enabled = provider is not None
        self.tracer = provider.get_tracer("copilot") if provider is not None else trace.NoOpTracer()

    @classmethod
    def off(cls) -> "Tracing":
        return cls(None)

    def temporal_interceptors(self) -> list:
        if not self.enabled:
            return []
        from temporalio.contrib.opentelemetry import TracingInterceptor

        return [TracingInterceptor(self.tracer)]

    def extract(self, headers: Mapping[str, str]) -> Context:
        return PROPAGATOR.extract(headers)

    @contextmanager
    def span(self, name: str, attributes: Optional[dict[str, Any]] = None,
             kind: SpanKind = SpanKind.INTERNAL, context: Optional[Context] = None) -> Iterator[Any]:
        """A span (or, tracing off, a stand-in that takes attributes and drops them). An exception
        marks it as an error with the exception's type only: messages can hold content."""
        if not self.enabled:
            yield _NO_SPAN
            return
        with self.tracer.start_as_current_span(name, context=context, kind=kind, attributes=attributes,
                                               record_exception=False, set_status_on_exception=False) as span:
            try:
                yield span
            except BaseException as failure:
                span.set_status(Status(StatusCode.ERROR, type(failure).__name__))
                raise


class _NoSpan:
    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        pass

    def set_status(self, *args: Any, **kwargs: Any) -> None:
        pass

    def update_name(self, name: str) -> None:
        pass


_NO_SPAN = _NoSpan()
_configured: dict[str, Tracing] = {}


def tracing_from_settings(endpoint: str, service_name: str) -> Tracing:
    """The process's tracing for these settings, made once: spans batched to `<endpoint>/v1/traces`
    over OTLP/HTTP, or off when no endpoint is set."""
    if not endpoint:
        return Tracing.off()
    key = f"{endpoint}|{service_name}"
    if key not in _configured:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
            endpoint=endpoint.rstrip("/") + "/v1/traces")))
        if not _configured:
            trace.set_tracer_provider(provider)
        _configured[key] = Tracing(provider)
    return _configured[key]
