"""The Vercel AI SDK's own parser (strict chunk schema, as useChat uses) reads our stream into
the message we stored: reasoning, a tool call with its output, and the answer text."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from local.model import chunks
from tests.support.helpers import marker, new_session, session_rows
from tests.support.scripted_model import Stream, text_reply

SDK_DIR = Path(__file__).resolve().parents[1] / "ai_sdk"


@pytest.mark.skipif(not (SDK_DIR / "node_modules" / "ai").exists() or not shutil.which("node"),
                    reason="needs node and `npm ci --prefix tests/ai_sdk` (make test does it)")
async def test_ai_sdk_reads_our_stream_without_an_adapter(http, user, scripted, stack):
    tag = marker()
    scripted.script(tag,
                    Stream([chunks.reasoning("Checking the clock."), chunks.text("One moment."),
                            chunks.tool_call(0, "", call_id="call_sdk", name="get_current_time"),
                            chunks.tool_call(0, '{"timezone": "UTC"}'), chunks.finish("tool_calls"),
                            chunks.usage(1, 1, 0.0001)]),
                    text_reply("It is now."))
    session_id = await new_session(http, user)
    async with http.stream("POST", f"/api/chat/sessions/{session_id}/stream", json={"message": f"Time? {tag}"},
                           headers=user.headers) as response:
        body = await response.aread()

    parsed = subprocess.run(["node", str(SDK_DIR / "read_ui_stream.mjs")], input=body, capture_output=True,
                            timeout=60)
    assert parsed.returncode == 0, parsed.stderr.decode()
    message = json.loads(parsed.stdout)
    kinds = [p["type"] for p in message["parts"] if p["type"] != "step-start"]
    assert kinds == ["reasoning", "text", "tool-get_current_time", "text"]
    reasoning, first_text, tool, answer = [p for p in message["parts"] if p["type"] != "step-start"]
    assert reasoning["text"] == "Checking the clock." and first_text["text"] == "One moment."
    assert tool["state"] == "output-available" and tool["input"] == {"timezone": "UTC"}
    assert tool["output"]["timezone"] == "UTC"
    rows = await session_rows(stack.database_url, session_id)
    assert answer["text"] == rows[-1]["content"] == "It is now."
