"""A worker process is SIGKILLed in the middle of a streaming round; a new worker finishes the
turn. Postgres holds exactly one user row and one answer; the reconnecting client gets a
well-formed stream that ends with `finish`."""

import asyncio
import uuid

import httpx

from api.main import create_app
from local.stack.process import free_port
from tests.support.helpers import follow, marker, new_session, session_rows
from tests.support.processes import start_worker
from tests.support.scripted_model import text_reply
from tests.support.servers import serve, shutdown
from tests.support.sse_client import assembled_text, assert_well_formed, read_events


async def test_worker_killed_mid_stream_the_turn_completes_once(settings, scripted, stack, user, worker):
    isolated = settings.model_copy(update={"temporal_task_queue": f"kill-test-{uuid.uuid4().hex[:8]}"})
    words = " ".join(f"token{i}" for i in range(60))
    tag = marker()
    scripted.script(tag, text_reply(words, delay=0.05))
    port = free_port()
    server, task = await serve(create_app(isolated), port)
    first_worker = start_worker(isolated, stack.log_dir / "worker-a.log")
    second_worker = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            session_id = await new_session(http, user)
            async with http.stream("POST", f"/api/chat/sessions/{session_id}/stream",
                                   json={"message": f"Tell me a story {tag}"}, headers=user.headers) as response:
                assert response.status_code == 200
                before_kill = await read_events(response, limit=8)
            assert [e.part["type"] for e in before_kill][-1] == "text-delta"

            first_worker.kill()
            second_worker = start_worker(isolated, stack.log_dir / "worker-b.log")

            after_reconnect = await asyncio.wait_for(follow(http, user, session_id, last_event_id=before_kill[-1].id), 60)

        events = before_kill + after_reconnect
        assert_well_formed(events)
        assert assembled_text(after_reconnect).endswith(words)
        rows = await session_rows(stack.database_url, session_id)
        assert [(r["role"], r["content"]) for r in rows] == [("user", f"Tell me a story {tag}"), ("assistant", words)]
        assert len(scripted.requests_for(tag)) == 2  # the killed attempt and its retry
    finally:
        first_worker.kill()
        if second_worker:
            second_worker.stop()
        await shutdown(server, task)
