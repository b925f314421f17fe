"""A round with two tool calls; the worker is SIGKILLed after the first finished. After a new
worker takes over, the first is not run again (its side effect happened once), the second runs
to completion, each is charged once, and the turn completes."""

import asyncio
import uuid
from pathlib import Path

import httpx

from api.main import create_app
from local.model import chunks
from local.stack.process import free_port
from tests.support.helpers import db_rows, follow, marker, new_session, session_rows
from tests.support.processes import start_worker
from tests.support.scripted_model import Stream, text_reply
from tests.support.servers import serve, shutdown
from tests.support.sse_client import assert_well_formed, iter_events
from workflows.copilot_turn import turn_workflow_id
from workspace.storage import DiskStorage


def two_bash_calls() -> Stream:
    first = '{"command": "echo a >> first.txt"}'
    second = '{"command": "sleep 3; echo b >> second.txt"}'
    return Stream([chunks.tool_call(0, "", call_id="call_first", name="bash_exec"), chunks.tool_call(0, first),
                   chunks.tool_call(1, "", call_id="call_second", name="bash_exec"), chunks.tool_call(1, second),
                   chunks.finish("tool_calls"), chunks.usage(1, 1, 0.0001)])


async def wait_for_completed_tool(client, session_id: str) -> None:
    handle = client.get_workflow_handle(turn_workflow_id(session_id))
    for _ in range(100):
        history = await handle.fetch_history()
        scheduled = {e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
                     for e in history.events if e.HasField("activity_task_scheduled_event_attributes")}
        if any(scheduled.get(e.activity_task_completed_event_attributes.scheduled_event_id) == "run_tool"
               for e in history.events if e.HasField("activity_task_completed_event_attributes")):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the first tool call never completed")


async def test_a_finished_tool_is_not_run_again_after_a_crash(settings, scripted, stack, user, worker,
                                                              temporal_client):
    isolated = settings.model_copy(update={
        "temporal_task_queue": f"tool-kill-{uuid.uuid4().hex[:8]}",
        "workspace_dir": str(Path(settings.workspace_dir).resolve())})
    tag = marker()
    scripted.script(tag, two_bash_calls(), text_reply("Both commands ran."))
    port = free_port()
    server, task = await serve(create_app(isolated), port)
    first_worker = start_worker(isolated, stack.log_dir / "tool-worker-a.log")
    second_worker = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            session_id = await new_session(http, user)
            folder = DiskStorage(Path(isolated.workspace_dir)).session_folder(session_id)
            async with http.stream("POST", f"/api/chat/sessions/{session_id}/stream",
                                   json={"message": f"Run both {tag}"}, headers=user.headers) as response:
                seen = []
                async for event in iter_events(response):
                    seen.append(event)
                    if event.part and event.part.get("type") == "tool-output-available":
                        break  # the first (fast) call finished; the second is sleeping
            assert (folder / "first.txt").read_text() == "a\n"
            # "Finished" means Temporal recorded the completion; a crash before that is a retry
            # by design (at-least-once), so the kill waits for the record.
            await wait_for_completed_tool(temporal_client, session_id)
            first_worker.kill()
            second_worker = start_worker(isolated, stack.log_dir / "tool-worker-b.log")

            rest = await asyncio.wait_for(follow(http, user, session_id, last_event_id=seen[-1].id), 60)

        assert_well_formed(seen + rest)
        assert (folder / "first.txt").read_text() == "a\n", "the finished call ran again"
        assert (folder / "second.txt").read_text() == "b\n"
        rows = await session_rows(stack.database_url, session_id)
        assert [r["role"] for r in rows] == ["user", "assistant", "tool", "tool", "assistant"]
        charges = await db_rows(stack.database_url, "SELECT amount FROM credit_ledger WHERE user_id = :u AND amount < 0",
                                u=user.id)
        assert [c["amount"] for c in charges] == [-1, -1]
    finally:
        first_worker.kill()
        if second_worker:
            second_worker.stop()
        await shutdown(server, task)

