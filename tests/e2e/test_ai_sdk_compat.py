"""The Vercel AI SDK's own parser (strict chunk schema, as useChat uses) reads our stream into
the message we stored, in every current major: the latest 5.x, 6.x and 7.x of `ai`, each pinned
in tests/ai_sdk/package-lock.json (npm aliases ai5, ai6, ai7). No major needs a part of its own:
the same stream serves all three. And a round retried after a broken stream, read by each major
and shown by the README's round-retry contract, shows the stored answer once."""

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from local.model import chunks
from tests.support.helpers import marker, new_session, session_rows
from tests.support.scripted_model import Stream, text_reply
from tests.support.users import make_user

SDK_DIR = Path(__file__).resolve().parents[1] / "ai_sdk"
MAJORS = ["ai5", "ai6", "ai7"]


def installed(alias: str) -> bool:
    return (SDK_DIR / "node_modules" / alias).exists() and shutil.which("node") is not None


def read_with(alias: str, body: bytes) -> dict:
    parsed = subprocess.run(["node", str(SDK_DIR / "read_ui_stream.mjs"), alias], input=body, capture_output=True,
                            timeout=60)
    assert parsed.returncode == 0, parsed.stderr.decode()
    return json.loads(parsed.stdout)


def visible(parts: list[dict]) -> list[dict]:
    """The README's round-retry contract: a `data-round-retry` part voids the parts after the last
    `step-start` (what the retried round's earlier attempt showed)."""
    out: list[dict] = []
    for part in parts:
        if part["type"] == "data-round-retry":
            while out and out[-1]["type"] != "step-start":
                out.pop()
            continue
        out.append(part)
    return out


def sdk(alias: str):
    return pytest.param(alias, marks=pytest.mark.skipif(
        not installed(alias), reason=f"needs node and `npm ci --prefix tests/ai_sdk` (make test does it) for {alias}"))


async def one_turn(api_url: str, settings, message: str) -> tuple[bytes, str]:
    user = make_user(settings)
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as http:
        session_id = await new_session(http, user)
        async with http.stream("POST", f"/api/chat/sessions/{session_id}/stream", json={"message": message},
                               headers=user.headers) as response:
            assert response.status_code == 200
            return await response.aread(), session_id


@pytest.fixture(scope="module")
async def tool_turn(api_url, settings, model_server, stack):
    tag = marker()
    model_server[0].script(tag,
                           Stream([chunks.reasoning("Checking the clock."), chunks.text("One moment."),
                                   chunks.tool_call(0, "", call_id="call_sdk", name="get_current_time"),
                                   chunks.tool_call(0, '{"timezone": "UTC"}'), chunks.finish("tool_calls"),
                                   chunks.usage(1, 1, 0.0001)]),
                           text_reply("It is now."))
    body, session_id = await one_turn(api_url, settings, f"Time? {tag}")
    return body, await session_rows(stack.database_url, session_id)


@pytest.mark.parametrize("alias", [sdk(a) for a in MAJORS])
async def test_ai_sdk_reads_our_stream_without_an_adapter(alias, tool_turn):
    body, rows = tool_turn
    message = read_with(alias, body)
    kinds = [p["type"] for p in message["parts"] if p["type"] != "step-start"]
    assert kinds == ["reasoning", "text", "tool-get_current_time", "text"]
    reasoning, first_text, tool, answer = [p for p in message["parts"] if p["type"] != "step-start"]
    assert reasoning["text"] == "Checking the clock." and first_text["text"] == "One moment."
    assert tool["state"] == "output-available" and tool["input"] == {"timezone": "UTC"}
    assert tool["output"]["timezone"] == "UTC"
    assert answer["text"] == rows[-1]["content"] == "It is now."


@pytest.fixture(scope="module")
async def retried_turn(api_url, settings, model_server, stack):
    tag = marker()
    model_server[0].script(tag, Stream([chunks.text("Half an ans"), chunks.text("wer that brea"), chunks.text("ks")],
                                       break_after=2),
                           text_reply("The whole answer."))
    body, session_id = await one_turn(api_url, settings, f"Hi {tag}")
    return body, await session_rows(stack.database_url, session_id)


@pytest.mark.parametrize("alias", [sdk(a) for a in MAJORS])
async def test_a_retried_round_is_shown_once_by_the_round_retry_contract(alias, retried_turn):
    body, rows = retried_turn
    message = read_with(alias, body)
    types = [p["type"] for p in message["parts"]]
    assert "data-round-retry" in types  # the broken attempt's text was closed, then voided
    shown = [p["text"] for p in visible(message["parts"]) if p["type"] == "text"]
    assert shown == [rows[-1]["content"]] == ["The whole answer."]


async def stream_until(http, headers: dict, session_id: str, marker_text: str) -> bytes:
    """The session's stream so far, read up to (and with) the first event that holds `marker_text`."""
    for _ in range(100):  # until the turn has opened its stream
        body = b""
        async with http.stream("GET", f"/api/chat/sessions/{session_id}/stream", headers=headers) as response:
            if response.status_code == 404:
                await asyncio.sleep(0.1)
                continue
            assert response.status_code == 200
            async for chunk in response.aiter_bytes():
                body += chunk
                if marker_text.encode() in body and body.endswith(b"\n\n"):
                    return body
        raise AssertionError("the stream ended before the approval request")
    raise AssertionError("the turn never opened its stream")


@pytest.mark.parametrize("alias", [sdk("ai7")])
async def test_ai_sdk_7_shows_a_waiting_call_as_approval_requested_and_ai_sdk_5_reads_it_too(
        alias, api_url, settings, model_server):
    tag = marker()
    model_server[0].script(tag, Stream([chunks.tool_call(0, "", call_id="call_wait", name="get_current_time"),
                                        chunks.tool_call(0, "{}"), chunks.finish("tool_calls"),
                                        chunks.usage(1, 1, 0.0001)]), text_reply("ok"))
    user = make_user(settings)
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as http:
        created = await http.post("/api/chat/sessions", json={"require_approval": ["get_current_time"]},
                                  headers=user.headers)
        session_id = created.json()["id"]
        sending = asyncio.create_task(http.post(f"/api/chat/sessions/{session_id}/turns", headers=user.headers,
                                                json={"message": f"wait {tag}", "wait_seconds": 60}))
        native = await stream_until(http, {**user.headers, "x-ai-sdk-version": "7"}, session_id,
                                    '"type":"tool-approval-request"')
        plain = await stream_until(http, user.headers, session_id, '"type":"data-tool-approval-request"')

        [tool] = [p for p in read_with(alias, native)["parts"] if p["type"] == "tool-get_current_time"]
        assert tool["state"] == "approval-requested" and tool["approval"]["id"] == "approval_call_wait"
        if installed("ai5"):
            parts = read_with("ai5", plain)["parts"]
            assert any(p["type"] == "data-tool-approval-request" for p in parts)
        decided = await http.post(f"/api/chat/sessions/{session_id}/tool-approvals/approval_call_wait",
                                  json={"approved": True}, headers=user.headers)
        assert decided.status_code == 200
        assert (await sending).json()["status"] == "completed"
