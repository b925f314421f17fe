"""Queued follow-ups, mid-turn delivery, auto-continue and Stop, on the real workflow."""

import asyncio
import json
import statistics
import time
import uuid

import httpx
from temporalio import activity
from temporalio.client import WorkflowUpdateStage
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.stop import StopActivities
from api.main import create_app
from database import session_maker
from local.model import chunks
from local.stack.process import free_port
from models import keys
from models.turn import IncomingMessage, RoundRequest, RoundResult, StopRequest, Usage
from stream_relay.connection import redis_client
from tests.support.helpers import follow, marker, new_session, queue, send, session_rows, slow_text, start_turn, stop
from tests.support.scripted_model import Stream, text_reply
from tests.support.servers import serve, shutdown
from tests.support.sse_client import assembled_text, assert_well_formed, iter_events, part_types, parts, read_events
from tests.support.turn_stand_ins import stand_ins
from tests.support.users import make_user
from workflows import turn_client
from workflows.copilot_turn import CopilotTurnWorkflow, turn_workflow_id


async def test_eleventh_message_is_refused_and_ten_are_kept_in_order(http, user, scripted, stack):
    tag = marker()
    scripted.script(tag, slow_text(60), text_reply("Answered all ten."))
    session_id = await new_session(http, user)
    await start_turn(http, user, session_id, f"first {tag}")

    for i in range(10):
        response = await queue(http, user, session_id, f"follow-up {i}")
        assert response.status_code == 202, response.text
        assert response.json()["buffer_length"] == i + 1 and response.json()["turn_in_flight"] is True
    refused = await queue(http, user, session_id, "one too many")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "buffer_full"

    pending = (await http.get(f"/api/chat/sessions/{session_id}/messages/pending", headers=user.headers)).json()
    assert pending["buffer_length"] == 10 and pending["max_buffer_length"] == 10
    assert [m["content"] for m in pending["messages"]] == [f"follow-up {i}" for i in range(10)]

    events = await follow(http, user, session_id)  # follows into the auto-continued turn
    assert part_types(events).count("start") == 2
    assert assembled_text(events).endswith("Answered all ten.")
    rows = await session_rows(stack.database_url, session_id)
    users = [r["content"] for r in rows if r["role"] == "user"]
    assert users == [f"first {tag}"] + [f"follow-up {i}" for i in range(10)]
    assert "one too many" not in json.dumps(rows)


async def test_two_messages_at_the_same_instant_start_exactly_one_turn(http, user, scripted, temporal_client):
    tag = marker()
    scripted.script(tag, slow_text(20, 0.02))
    session_id = await new_session(http, user)

    async def post(message):
        async with http.stream("POST", f"/api/chat/sessions/{session_id}/stream", json={"message": message},
                               headers=user.headers) as response:
            body = await read_events(response) if response.status_code == 200 else json.loads(await response.aread())
            return response.status_code, body

    results = await asyncio.gather(post(f"a {tag}"), post(f"b {tag}"))
    assert sorted(status for status, _ in results) == [200, 202]
    runs = [w async for w in temporal_client.list_workflows(f"CopilotSessionId = '{session_id}'")]
    assert len({w.run_id for w in runs}) <= 2  # the turn, and at most its auto-continuation


async def test_follow_up_is_delivered_at_the_round_boundary(http, user, scripted, stack):
    tag = marker()
    tool_round = Stream([chunks.text("Let me check."),
                         chunks.tool_call(0, "", call_id="call_mid", name="get_current_time"),
                         chunks.tool_call(0, "{}"), chunks.finish("tool_calls"), chunks.usage(1, 1, 0.0001)],
                        delay=0.3)
    scripted.script(tag, tool_round, text_reply("Here is the time, and noted your follow-up."))
    session_id = await new_session(http, user)
    await start_turn(http, user, session_id, f"What time is it? {tag}", read=1)

    queued = await queue(http, user, session_id, "Also, use 24-hour format.")
    assert queued.status_code == 202
    events = await follow(http, user, session_id)

    delivered = [p for p in parts(events) if p["type"] == "data-pending-delivered"]
    assert delivered and delivered[0]["data"]["messageIds"] == [queued.json()["message_id"]]
    second = scripted.requests_for(tag)[-1]["messages"]
    assert [m["role"] for m in second[-3:]] == ["assistant", "tool", "user"]
    assert second[-1]["content"] == "Also, use 24-hour format."
    rows = await session_rows(stack.database_url, session_id)
    assert [r["role"] for r in rows] == ["user", "assistant", "tool", "user", "assistant"]
    assert rows[3]["content"] == "Also, use 24-hour format."
    assert part_types(events).count("start") == 1  # delivered inside the same turn


async def test_auto_continue_never_shows_two_turns_at_once(http, user, scripted, temporal_client):
    tag = marker()
    scripted.script(tag, slow_text(30, 0.03), text_reply("Second turn answer."))
    session_id = await new_session(http, user)
    await start_turn(http, user, session_id, f"first {tag}")
    assert (await queue(http, user, session_id, "second")).status_code == 202

    running_counts = []
    follower = asyncio.create_task(follow(http, user, session_id))
    while not follower.done():
        running = [w async for w in temporal_client.list_workflows(
            f"CopilotSessionId = '{session_id}' AND ExecutionStatus = 'Running'")]
        running_counts.append(len(running))
        await asyncio.sleep(0.05)
    events = follower.result()
    assert max(running_counts) == 1
    assert part_types(events).count("finish") == 2 and assembled_text(events).endswith("Second turn answer.")


async def test_stop_during_streaming_keeps_the_partial_answer(http, user, scripted, stack):
    tag = marker()
    scripted.script(tag, slow_text(200, 0.05), text_reply("Fresh turn."))
    session_id = await new_session(http, user)
    first = await start_turn(http, user, session_id, f"long {tag}", read=10)

    assert (await stop(http, user, session_id)) == {"stopped": True}

    detail = (await http.get(f"/api/chat/sessions/{session_id}", headers=user.headers)).json()
    assert detail["active_turn"] is None
    rows = await session_rows(stack.database_url, session_id)
    assert [r["role"] for r in rows] == ["user", "assistant", "system"]
    partial = rows[1]["content"]
    assert partial and " ".join(f"w{i}" for i in range(200)).startswith(partial)
    assert assembled_text(first) in partial
    replay = await follow(http, user, session_id)
    assert_well_formed(replay)
    assert part_types(replay)[-2:] == ["abort", "finish"]

    events = await send(http, user, session_id, f"again {tag}")
    assert assembled_text(events) == "Fresh turn."
    sent = scripted.requests_for(tag)[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert all("stopped by user" not in (m["content"] or "") for m in sent)


async def test_stop_during_a_tool_that_ignores_cancellation(http, user, scripted, stack):
    tag = marker()
    scripted.script(tag, Stream([chunks.tool_call(0, "", call_id="call_nap", name="stubborn_nap"),
                                 chunks.tool_call(0, '{"seconds": 5}'), chunks.finish("tool_calls"),
                                 chunks.usage(1, 1, 0.0001)]),
                    text_reply("New turn after stop."))
    session_id = await new_session(http, user)
    events = await start_turn(http, user, session_id, f"nap {tag}", read=5)
    assert "tool-input-available" in part_types(events)
    await asyncio.sleep(0.3)

    started = time.perf_counter()
    assert (await stop(http, user, session_id)) == {"stopped": True}
    assert time.perf_counter() - started < 2.0

    answer = await send(http, user, session_id, f"next {tag}")
    assert assembled_text(answer) == "New turn after stop."
    sent = scripted.requests_for(tag)[-1]["messages"]
    tool_results = [m for m in sent if m["role"] == "tool"]
    assert tool_results == [{"role": "tool", "content": '{"error": "stopped by user"}', "tool_call_id": "call_nap"}]
    rows = await session_rows(stack.database_url, session_id)
    assert [r["role"] for r in rows][:4] == ["user", "assistant", "tool", "system"]


async def test_stop_keeps_the_result_of_a_tool_that_finished_in_the_round(http, user, scripted, stack):
    tag = marker()
    scripted.script(tag, Stream([chunks.tool_call(0, "", call_id="call_time", name="get_current_time"),
                                 chunks.tool_call(0, '{"timezone": "UTC"}'),
                                 chunks.tool_call(1, "", call_id="call_slow", name="stubborn_nap"),
                                 chunks.tool_call(1, '{"seconds": 5}'), chunks.finish("tool_calls"),
                                 chunks.usage(1, 1, 0.0001)]),
                    text_reply("After the stop."))
    session_id = await new_session(http, user)
    async with http.stream("POST", f"/api/chat/sessions/{session_id}/stream", json={"message": f"both {tag}"},
                           headers=user.headers) as response:
        async for event in iter_events(response):
            part = event.part or {}
            if part.get("type") == "tool-output-available" and part["toolCallId"] == "call_time":
                shown = part["output"]
                break

    assert (await stop(http, user, session_id)) == {"stopped": True}

    rows = await session_rows(stack.database_url, session_id)
    results = {r["tool_call_id"]: r["content"] for r in rows if r["role"] == "tool"}
    assert json.loads(results["call_time"]) == shown  # what the client saw, not "stopped by user"
    assert results["call_slow"] == '{"error": "stopped by user"}'
    replay = parts(await follow(http, user, session_id))
    assert [p["type"] for p in replay if p.get("toolCallId") == "call_time"][-1] == "tool-output-available"
    await send(http, user, session_id, f"next {tag}")
    sent = {m["tool_call_id"]: m["content"] for m in scripted.requests_for(tag)[-1]["messages"] if m["role"] == "tool"}
    assert sent == results


async def test_stop_is_idempotent_and_quick_when_idle(http, user, scripted):
    session_id = await new_session(http, user)
    started = time.perf_counter()
    assert (await stop(http, user, session_id)) == {"stopped": False}
    assert (await stop(http, user, session_id)) == {"stopped": False}
    assert time.perf_counter() - started < 1.0


async def test_a_message_queued_before_stop_becomes_the_next_turn(http, user, scripted, stack):
    tag = marker()
    scripted.script(tag, slow_text(200, 0.05), text_reply("Answer to the queued message."))
    session_id = await new_session(http, user)
    await start_turn(http, user, session_id, f"long {tag}")
    assert (await queue(http, user, session_id, "queued during the turn")).status_code == 202

    assert (await stop(http, user, session_id)) == {"stopped": True}
    events = await follow(http, user, session_id)

    assert assembled_text(events).endswith("Answer to the queued message.")
    rows = await session_rows(stack.database_url, session_id)
    assert [r["role"] for r in rows] == ["user", "assistant", "system", "user", "assistant"]
    assert rows[3]["content"] == "queued during the turn"


async def test_a_message_sent_during_stop_becomes_the_next_turn(http, user, scripted, stack, temporal_client):
    tag = marker()
    scripted.script(tag, slow_text(200, 0.05), text_reply("Answer to the message sent during stop."))
    session_id = await new_session(http, user)
    await start_turn(http, user, session_id, f"long {tag}")
    handle = temporal_client.get_workflow_handle(turn_workflow_id(session_id))

    stopping = await handle.start_update(CopilotTurnWorkflow.stop, wait_for_stage=WorkflowUpdateStage.ACCEPTED)
    assert (await handle.query(CopilotTurnWorkflow.state)).status == "stopped"  # stopping, not yet closed
    sent = await queue(http, user, session_id, "sent during stop")

    assert await stopping.result() is True
    assert sent.status_code in (200, 202), sent.text  # a new turn, or queued into the next one
    events = await follow(http, user, session_id)
    assert assembled_text(events).endswith("Answer to the message sent during stop.")
    rows = await session_rows(stack.database_url, session_id)
    assert [r["role"] for r in rows] == ["user", "assistant", "system", "user", "assistant"]
    assert rows[3]["content"] == "sent during stop"


async def test_reasoning_is_persisted_and_never_sent_back(http, user, scripted, stack):
    tag = marker()
    scripted.script(tag, Stream([chunks.reasoning("private chain of thought"), chunks.text("Visible."),
                                 chunks.finish(), chunks.usage(1, 1, 0.0001)]), text_reply("Second."))
    session_id = await new_session(http, user)
    await send(http, user, session_id, f"one {tag}")
    await send(http, user, session_id, f"two {tag}")

    detail = (await http.get(f"/api/chat/sessions/{session_id}", headers=user.headers)).json()
    assert [m["role"] for m in detail["messages"]] == ["user", "reasoning", "assistant", "user", "assistant"]
    second_request = json.dumps(scripted.requests_for(tag)[-1]["messages"])
    assert "private chain of thought" not in second_request and "Visible." in second_request


async def test_stop_latency(http, settings, scripted):
    """Stop-to-idle, and stop then send: the next message starts a new turn well under 1 s after
    stop returns. Medians of 20 (printed with -s), with stop-then-send to the first token."""
    tag = marker()
    scripted.script(tag, slow_text(400, 0.05))
    stop_to_idle, returned_to_start, stop_to_token = [], [], []
    for i in range(20):
        user = make_user(settings)  # 40 messages would exceed one user's message rate
        session_id = await new_session(http, user)
        await start_turn(http, user, session_id, f"long {i} {tag}")
        started = time.perf_counter()
        await stop(http, user, session_id)
        returned = time.perf_counter()
        stop_to_idle.append(returned - started)
        async with http.stream("POST", f"/api/chat/sessions/{session_id}/stream",
                               json={"message": f"next {i} {tag}"}, headers=user.headers) as response:
            assert response.status_code == 200  # a new turn, not queued behind the stopped one
            async for event in iter_events(response):
                part = event.part or {}
                if part.get("type") == "start":
                    returned_to_start.append(time.perf_counter() - returned)
                if part.get("type") == "text-delta":
                    stop_to_token.append(time.perf_counter() - started)
                    break
        await stop(http, user, session_id)
    print(f"\nstop-to-idle median {1000 * statistics.median(stop_to_idle):.0f} ms; stop returned to the next "
          f"turn's start median {1000 * statistics.median(returned_to_start):.0f} ms "
          f"(max {1000 * max(returned_to_start):.0f} ms); "
          f"stop-then-send to first token median {1000 * statistics.median(stop_to_token):.0f} ms")
    assert statistics.median(stop_to_idle) < 1.0
    assert len(returned_to_start) == 20
    assert statistics.median(returned_to_start) < 0.5 and max(returned_to_start) < 1.0


# A turn that is slow to close: stand-in activities on an isolated task queue, gated by events.
MODEL_GATE, STOP_GATE = asyncio.Event(), asyncio.Event()


@activity.defn(name="stream_model_round")
async def stub_model_round(request: RoundRequest) -> RoundResult:
    await MODEL_GATE.wait()
    return RoundResult(text="Answer.", reasoning="", tool_calls=[], usage=Usage(), model="stub")


@activity.defn(name="record_stop")
async def stub_record_stop(request: StopRequest) -> None:
    await STOP_GATE.wait()  # Stop's bookkeeping is stuck (a database or Redis that hangs)


async def test_a_turn_slow_to_close_answers_stop_and_messages_with_retryable_statuses(settings, temporal_client,
                                                                                        monkeypatch):
    """Stop that outlasts its wait is a 503 `stop_pending`, and a message refused because the turn
    is still closing is a 409 `turn_closing`: clear, retryable answers, never a 500 or a 422."""
    isolated = settings.model_copy(update={"temporal_task_queue": f"slow-close-{uuid.uuid4().hex[:8]}"})
    monkeypatch.setattr(turn_client, "STOP_WAIT_SECONDS", 1.0)
    monkeypatch.setattr(turn_client, "CLOSING_RETRIES", 10)
    MODEL_GATE.clear(), STOP_GATE.clear()
    user = make_user(settings)
    port = free_port()
    server, task = await serve(create_app(isolated), port)
    try:
        async with Worker(temporal_client, task_queue=isolated.temporal_task_queue, workflows=[CopilotTurnWorkflow],
                          activities=stand_ins(stream_model_round=stub_model_round,
                                               record_stop=stub_record_stop)), \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            session_id = await new_session(http, user)

            async def post_turn(message: str) -> httpx.Response:
                return await http.post(f"/api/chat/sessions/{session_id}/turns", headers=user.headers,
                                       json={"message": message, "wait_seconds": 0})

            assert (await post_turn("first")).json()["status"] == "running"
            pending = await http.post(f"/api/chat/sessions/{session_id}/stop", headers=user.headers)
            assert pending.status_code == 503, pending.text
            assert pending.json()["error"]["code"] == "stop_pending" and pending.headers["Retry-After"] == "1"

            refused = await post_turn("while it closes")
            assert refused.status_code == 409, refused.text
            assert refused.json()["error"]["code"] == "turn_closing" and refused.headers["Retry-After"] == "1"

            STOP_GATE.set()
            assert (await http.post(f"/api/chat/sessions/{session_id}/stop", headers=user.headers)).status_code == 200
            MODEL_GATE.set()
            answered = await http.post(f"/api/chat/sessions/{session_id}/turns", headers=user.headers,
                                       json={"message": "once it closed", "wait_seconds": 10})
            assert answered.status_code == 200 and answered.json()["status"] != "running", answered.text
    finally:
        MODEL_GATE.set(), STOP_GATE.set()
        await shutdown(server, task)


async def test_a_stop_before_the_first_writes_keeps_the_message_and_opens_the_stream(http, user, settings, stack):
    """The first writes are cut short by a Stop: the stop record stores the opening message and
    opens the stream itself, so nothing the person sent is lost and the stream is well-formed."""
    session_id = await new_session(http, user)
    turn_id = str(uuid.uuid4())
    stream_key = keys.turn_stream_key(session_id, turn_id)
    redis = redis_client(settings.redis_url)
    activities = StopActivities(redis, session_maker(settings.database_url), settings.stream_retention_seconds)
    request = StopRequest(session_id=session_id, turn_id=turn_id, stream_key=stream_key, round_index=-1,
                          open_tool_calls=[], unrecorded_messages=[IncomingMessage(message_id="m-1", content="kept")])

    for _ in range(2):  # a retried stop record writes nothing twice
        await ActivityEnvironment().run(activities.record_stop, request)

    rows = await session_rows(stack.database_url, session_id)
    assert [(r["role"], r["content"]) for r in rows] == [("user", "kept"), ("system", "stopped by user")]
    replay = await follow(http, user, session_id)
    assert part_types(replay) == ["start", "finish-step", "abort", "finish"]
    await redis.aclose()
