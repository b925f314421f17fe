"""A tool call that takes its worker down is not a poison pill: with the worker restarted after
every death, the call is attempted twice, then ends with `tool_failed` and the turn goes on."""

import asyncio
import uuid
from pathlib import Path

import httpx

from api.main import create_app
from local.stack.process import free_port
from tests.support.extra_tools import TEST_TOOLS
from tests.support.helpers import marker, new_session, session_rows
from tests.support.processes import start_worker
from tests.support.scripted_model import text_reply, tool_call_reply
from tests.support.servers import serve, shutdown
from tests.support.sse_client import assembled_text, assert_well_formed, parts, read_events


async def test_a_tool_that_kills_its_worker_is_tried_twice_then_fails(settings, scripted, stack, user, tmp_path):
    isolated = settings.model_copy(update={"temporal_task_queue": f"poison-{uuid.uuid4().hex[:8]}",
                                           "workspace_dir": str(Path(settings.workspace_dir).resolve())})
    attempts = tmp_path / "attempts"
    tag, call_id = marker(), f"call_{uuid.uuid4().hex[:8]}"
    scripted.script(tag, tool_call_reply("kill_own_worker", {"attempts_file": str(attempts)}, call_id),
                    text_reply("Carried on without it."))
    port = free_port()
    server, task = await serve(create_app(isolated, TEST_TOOLS), port)
    workers = [start_worker(isolated, stack.log_dir / "poison-worker-0.log", extra_tools=True)]

    async def keep_a_worker_running() -> None:
        while len(workers) < 6:
            if not workers[-1].alive():
                workers.append(start_worker(isolated, stack.log_dir / f"poison-worker-{len(workers)}.log",
                                            extra_tools=True))
            await asyncio.sleep(0.1)

    supervisor = asyncio.create_task(keep_a_worker_running())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=90) as http:
            session_id = await new_session(http, user)
            async with http.stream("POST", f"/api/chat/sessions/{session_id}/stream",
                                   json={"message": f"Use the tool {tag}"}, headers=user.headers) as response:
                events = await asyncio.wait_for(read_events(response), 90)
    finally:
        supervisor.cancel()
        for worker in workers:
            worker.kill()
        await shutdown(server, task)

    assert len(attempts.read_text().split()) == 2  # attempted twice, by two different workers
    assert len(set(attempts.read_text().split())) == 2
    assert_well_formed(events)
    failed = [p for p in parts(events) if p["type"] == "tool-output-error"]
    assert len(failed) == 1 and failed[0]["errorText"].startswith("tool_failed: 'kill_own_worker' was attempted 2 times")
    assert assembled_text(events).endswith("Carried on without it.")
    rows = await session_rows(stack.database_url, session_id)
    assert [r["role"] for r in rows] == ["user", "assistant", "tool", "assistant"]
    logs = "".join((stack.log_dir / f"poison-worker-{i}.log").read_text() for i in range(len(workers))
                   if (stack.log_dir / f"poison-worker-{i}.log").exists())
    assert f"tool call {call_id} (kill_own_worker)" in logs  # the worker log names the call
