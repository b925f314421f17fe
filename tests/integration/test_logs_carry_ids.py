"""One logging setup, ids on every line: while a turn runs through the real API and worker (in this
process), every log record, formatted as the API and the worker format it (JSON lines), carries
the request, session, turn and trace id fields; the API's lines about the request and the worker's
lines about its turn (the workflow's and the activities', the request id carried in Temporal
headers) name the request, the session and the turn."""

import json
import logging
import uuid

import pytest

from local.model import chunks
from observability.logs import FIELDS, JsonFormatter
from tests.support.helpers import marker, new_session
from tests.support.scripted_model import Fail, Stream, text_reply
from tests.support.sse_client import read_events


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("test"))
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines():
    root, handler = logging.getLogger(), Lines()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_every_line_carries_the_request_session_turn_and_trace_ids(http, user, scripted, lines):
    tag = marker()
    request_id = f"req-{uuid.uuid4().hex[:12]}"
    trace_id = uuid.uuid4().hex
    scripted.script(tag,
                    Stream([chunks.tool_call(0, "", call_id="call_l", name="get_current_time"),
                            chunks.tool_call(0, '{"timezone": "Not/AZone"}'), chunks.finish("tool_calls"),
                            chunks.usage(1, 1, 0.0001)]),
                    Fail(503), text_reply("Done."))
    session_id = await new_session(http, user)
    async with http.stream("POST", f"/api/chat/sessions/{session_id}/stream", json={"message": f"Time? {tag}"},
                           headers={**user.headers, "X-Request-ID": request_id,
                                    "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}) as response:
        assert response.headers["x-request-id"] == request_id
        events = await read_events(response)
    turn_id = events[0].part["messageId"]

    assert lines and all(set(FIELDS) <= set(line) for line in lines)
    mine = [line for line in lines if line["request_id"] == request_id]
    api = [line for line in mine if line["logger"].startswith("api")]  # the send's own line
    assert api and all(line["session_id"] == session_id and line["trace_id"] == trace_id
                       and line["turn_id"] == turn_id for line in api), api
    # The worker's lines about the turn (the activities', the SDK's about them, the failed round's
    # warning) carry the request's ids, carried to them in Temporal headers.
    turn = [line for line in lines if line["turn_id"] == turn_id]
    assert {line["request_id"] for line in turn} == {request_id}
    assert {line["session_id"] for line in turn} == {session_id}
    assert {line["trace_id"] for line in turn} == {trace_id}
    loggers = {line["logger"] for line in turn}
    assert {"activities.llm", "temporalio.activity"} <= loggers, loggers
    assert any(line["message"].startswith("Starting activity") for line in turn)
    for line in lines:
        assert f"Time? {tag}" not in json.dumps(line)  # never the message
