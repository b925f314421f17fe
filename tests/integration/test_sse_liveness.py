"""Through the real SSE endpoint: a quiet stream gets keep-alive comments, and a stream silent
for the idle timeout ends with a retryable `idle_timeout` error part."""

import json

import httpx
import pytest

from api.main import create_app
from local.stack.process import free_port
from tests.support.helpers import marker, new_session
from tests.support.scripted_model import text_reply
from tests.support.servers import serve, shutdown


@pytest.fixture
async def impatient_api(settings):
    """A second API process on the same stack, with short keep-alive and idle timings."""
    port = free_port()
    app = create_app(settings.model_copy(update={"stream_keepalive_seconds": 0.3, "stream_idle_timeout_seconds": 1.5}))
    server, task = await serve(app, port)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield client
    await shutdown(server, task)


async def test_quiet_streams_get_keep_alives_and_silent_ones_end_with_idle_timeout(impatient_api, user, scripted,
                                                                                  worker):
    tag = marker()
    # The model says nothing for 4 s: past the idle timeout of this API, well past its keep-alive.
    scripted.script(tag, text_reply("late words", first_delay=4.0))
    session_id = await new_session(impatient_api, user)
    lines = []
    async with impatient_api.stream("POST", f"/api/chat/sessions/{session_id}/stream",
                                    json={"message": f"{tag} take your time"}, headers=user.headers) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            lines.append(line)
            if line == "data: [DONE]":
                break
    assert lines.count(": keep-alive") >= 2
    data = [line[6:] for line in lines if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    ending = [json.loads(d) for d in data[-3:-1]]
    assert ending[0] == {"type": "data-stream-error", "data": {"code": "idle_timeout", "retryable": True}}
    assert ending[1]["type"] == "error" and ending[1]["errorText"]
