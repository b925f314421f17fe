"""One logging setup for the API and the worker: JSON lines (or key=value, what `make dev` shows),
each carrying the request, session, turn and trace ids of what it is about.

The ids come from where the line was written: the API's request (`api/telemetry.py` opens a
context per request; a route adds the session and turn it works on), a Temporal activity (its
workflow's id and run: `copilot-turn/<session>` and the turn) or workflow (`workflow.logger`'s
extras), and the request id that started the workflow (carried in Temporal headers by
`observability.temporal`). Lines hold what the code logs and these ids, never message content:
callers log ids (tests/e2e/test_logs_hold_no_content.py).
"""

import contextvars
import json
import logging
import sys
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Iterator, Optional

from temporalio import activity

FIELDS = ("request_id", "session_id", "turn_id", "trace_id")
# What `workflows.copilot_turn.turn_workflow_id` names a session's turn workflow (a unit test checks).
TURN_WORKFLOW_PREFIX = "copilot-turn/"
# Loggers whose own handlers would write a second, unstructured copy of each line.
TAKEN_OVER = ("uvicorn", "uvicorn.error", "uvicorn.access")
# Chatty at INFO about nothing an operator needs (alembic lists its plugins as it is imported).
QUIET = ("alembic.runtime.plugins",)

_context: contextvars.ContextVar[Optional[dict[str, Optional[str]]]] = contextvars.ContextVar(
    "copilot_log_context", default=None)


def open_context(**fields: Optional[str]) -> contextvars.Token:
    """Starts a context (a request, an activity) whose ids every line written in it carries; the
    fields of the enclosing context carry over. Close it with `close_context(token)`."""
    current = _context.get() or {}
    return _context.set({**current, **{k: v for k, v in fields.items() if v is not None}})


def close_context(token: contextvars.Token) -> None:
    _context.reset(token)


def annotate(**fields: Optional[str]) -> None:
    """Adds ids to the current context, seen by every line written in it from now on, also by the
    tasks it already started (a route learning its turn id while its stream is being served)."""
    current = _context.get()
    if current is not None:
        current.update({k: v for k, v in fields.items() if v is not None})


def current(name: str) -> Optional[str]:
    return (_context.get() or {}).get(name)


# The request (and trace) ids of the workflow runs this process works on, for the lines the SDK
# writes about a run's activities outside of them ("Starting activity"). Bounded: the oldest go.
CARRIED = ("request_id", "trace_id")
_RUNS_KEPT = 10_000
_runs: "OrderedDict[str, dict[str, str]]" = OrderedDict()
_runs_lock = threading.Lock()


def remember_run(run_id: str, fields: dict[str, str]) -> None:
    with _runs_lock:
        _runs[run_id] = fields
        _runs.move_to_end(run_id)
        while len(_runs) > _RUNS_KEPT:
            _runs.popitem(last=False)


def _run_fields(run_id: Optional[str]) -> dict[str, str]:
    if not run_id:
        return {}
    with _runs_lock:
        return _runs.get(run_id, {})


def _session_and_turn(workflow_id: Optional[str], run_id: Optional[str]) -> tuple[Optional[str], Optional[str]]:
    if workflow_id and workflow_id.startswith(TURN_WORKFLOW_PREFIX):
        return workflow_id[len(TURN_WORKFLOW_PREFIX):], run_id
    return None, None


def _current_trace_id() -> Optional[str]:
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else None


def record_ids(record: logging.LogRecord) -> dict[str, Optional[str]]:
    """The ids of a log record: its context's, else its workflow's or activity's, else the current span's."""
    ids: dict[str, Optional[str]] = dict.fromkeys(FIELDS)
    ids.update({k: v for k, v in (_context.get() or {}).items() if k in ids})
    workflow_info = getattr(record, "temporal_workflow", None)
    run_id = None
    if isinstance(workflow_info, dict):
        run_id = workflow_info.get("run_id")
        session_id, turn_id = _session_and_turn(workflow_info.get("workflow_id"), run_id)
    elif activity.in_activity():
        info = activity.info()
        run_id = info.workflow_run_id
        session_id, turn_id = _session_and_turn(info.workflow_id, run_id)
    if run_id:
        ids["session_id"] = ids["session_id"] or session_id
        ids["turn_id"] = ids["turn_id"] or turn_id
        if not (ids["request_id"] and ids["trace_id"]):
            for key, value in _run_fields(run_id).items():
                ids[key] = ids[key] or value
    if not ids["trace_id"]:
        ids["trace_id"] = _current_trace_id()
    return ids


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


class _Formatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def fields(self, record: logging.LogRecord) -> Iterator[tuple[str, Any]]:
        yield "time", _time(record)
        yield "level", record.levelname
        yield "service", self.service
        yield "logger", record.name
        yield "message", record.getMessage()
        yield from record_ids(record).items()
        if record.exc_info:
            yield "exception", self.formatException(record.exc_info)
        elif record.exc_text:
            yield "exception", record.exc_text


class JsonFormatter(_Formatter):
    """One JSON object a line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(dict(self.fields(record)), ensure_ascii=False, default=str)


def _kv_value(value: Any) -> str:
    if value is None:
        return "-"
    text = str(value)
    if not text or any(c in text for c in ' "=\n\t\\'):
        return json.dumps(text, ensure_ascii=False)
    return text


class KeyValueFormatter(_Formatter):
    """`time level logger message k=v ...` for a person at a terminal (`make dev`)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = dict(self.fields(record))
        head = f"{fields.pop('time')} {fields.pop('level'):<7} {fields.pop('logger')}"
        fields.pop("service")
        return f"{head} " + " ".join(f"{key}={_kv_value(value)}" for key, value in fields.items())


def formatter(log_format: str, service: str) -> logging.Formatter:
    return KeyValueFormatter(service) if log_format == "kv" else JsonFormatter(service)


def configured_formatter(service: str) -> logging.Formatter:
    """The settings' format (LOG_FORMAT), for a logging config file: `api/logging.json`, which
    uvicorn applies (`--log-config`) before it says a word, so its first lines are ours too."""
    from settings import get_settings

    return formatter(get_settings().log_format, service)


def configure_logging(log_format: str, level: str, service: str) -> None:
    """The process's one logging setup (the API's and the worker's entry points call it): every
    record, the server's and the SDK's included, goes through one handler in one format."""
    from temporalio import workflow

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format, service))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in TAKEN_OVER:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    # The ids are fields of the line: the SDK need not append its info dict to every message.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
