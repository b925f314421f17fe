"""Per request: its id (the caller's `X-Request-ID`, or a new one, answered in the same header),
its log context (request, session, trace ids), its server span continuing the caller's trace
(tracing on), and its count and duration by route template (`/metrics`)."""

import re
import time
import uuid
from typing import Optional

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observability import logs, metrics
from observability.tracing import Tracing, callers_trace_id

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_SESSION_IN_PATH = re.compile(r"/sessions/([0-9A-Za-z-]{1,64})(?:/|$)")
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"}


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers") or []}


def _route_template(scope: Scope) -> str:
    """The route's path template (`/api/chat/sessions/{session_id}`), never the path itself: a label
    with an id in it would make a series per session."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestTelemetry:
    def __init__(self, app: ASGIApp, tracing: Tracing, metrics_enabled: bool = True):
        self.app = app
        self.tracing = tracing
        self.metrics_enabled = metrics_enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        sent = headers.get(REQUEST_ID_HEADER, "")
        request_id = sent if _REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex
        session = _SESSION_IN_PATH.search(scope.get("path", ""))
        token = logs.open_context(request_id=request_id, session_id=session.group(1) if session else None)
        status = 500
        method = scope.get("method", "GET")
        method = method if method in _METHODS else "OTHER"
        started = time.monotonic()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            if self.tracing.enabled:
                await self._traced(scope, receive, send_with_id, headers, method, lambda: status)
            else:
                logs.annotate(trace_id=callers_trace_id(headers))
                await self.app(scope, receive, send_with_id)
        finally:
            if self.metrics_enabled:
                route = _route_template(scope)
                metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
                metrics.HTTP_REQUEST_DURATION.labels(method, route).observe(time.monotonic() - started)
            logs.close_context(token)

    async def _traced(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], method: str,
                      status) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        with self.tracing.span(f"{method} {scope.get('path', '')}", kind=SpanKind.SERVER,
                               context=self.tracing.extract(headers),
                               attributes={"http.request.method": method}) as span:
            context = span.get_span_context()
            logs.annotate(trace_id=f"{context.trace_id:032x}")
            try:
                await self.app(scope, receive, send)
            finally:
                route = _route_template(scope)
                code: Optional[int] = status()
                span.update_name(f"{method} {route}")
                span.set_attributes({"http.route": route, "http.response.status_code": code})
                if code >= 500:
                    span.set_status(Status(StatusCode.ERROR))
