"""Text PostgreSQL cannot store never wedges a session: typed by a person it is refused with a
422 naming the field (nothing written); produced by the model or a tool it is stored cleaned."""

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from local.model import chunks
from tests.support.helpers import marker, new_session, queue, send, session_rows
from tests.support.scripted_model import Stream, text_reply
from tests.support.sse_client import assembled_text, assert_well_formed
from workflows import turn_client
from workflows.copilot_turn import turn_workflow_id


async def test_a_nul_in_what_a_person_types_is_refused_naming_the_field(http, user, stack, scripted):
    for body, field in (({"title": "a\u0000b"}, "title"), ({"metadata": {"k\u0000": 1}}, "metadata"),
                        ({"metadata": {"k": ["fine", "not\u0000fine"]}}, "metadata")):
        response = await http.post("/api/chat/sessions", json=body, headers=user.headers)
        assert response.status_code == 422, response.text
        assert field in response.text and "NUL" in response.text
    session_id = await new_session(http, user)
    for path in ("stream", "turns"):
        refused = await http.post(f"/api/chat/sessions/{session_id}/{path}", json={"message": "and\u0000more"},
                                  headers=user.headers)
        assert refused.status_code == 422 and "message" in refused.text, refused.text
    assert await session_rows(stack.database_url, session_id) == []


async def test_a_nul_follow_up_while_a_turn_runs_is_refused_and_stop_still_works(http, user, stack, scripted,
                                                                                  temporal_client):
    tag = marker()
    scripted.script(tag, text_reply(" ".join(f"w{i}" for i in range(40)), delay=0.05))
    session_id = await new_session(http, user)
    running = asyncio.create_task(send(http, user, session_id, f"long {tag}"))
    await asyncio.sleep(0.5)
    queued = await queue(http, user, session_id, "and\u0000more")
    assert queued.status_code == 422, queued.text
    stopped = await http.post(f"/api/chat/sessions/{session_id}/stop", headers=user.headers)
    assert stopped.status_code == 200 and stopped.json() == {"stopped": True}
    await running
    assert await turn_client.running_turn_state(temporal_client, session_id) is None


async def test_nul_from_the_model_and_its_tool_calls_is_stored_cleaned(http, user, stack, scripted):
    tag = marker()
    arguments = '{"timezone": "UTC", "note": "x\\u0000y"}'
    scripted.script(tag, Stream([chunks.text("before\u0000after"),
                                 chunks.tool_call(0, "", call_id="call_nul", name="get_current_time"),
                                 chunks.tool_call(0, arguments), chunks.finish("tool_calls"),
                                 chunks.usage(1, 1, 0.0001)]),
                    text_reply("Done\u0000 here."))
    session_id = await new_session(http, user)
    events = await send(http, user, session_id, f"nul {tag}")
    assert_well_formed(events)
    assert "Done" in assembled_text(events)
    rows = await session_rows(stack.database_url, session_id)
    assert [r["role"] for r in rows] == ["user", "assistant", "tool", "assistant"]
    assert rows[1]["content"] == "before\ufffdafter" and rows[3]["content"] == "Done\ufffd here."


@pytest.fixture
async def refused_rows(stack):
    """A database that refuses, for good, every assistant row carrying a marker: a persistent
    write failure injected in PostgreSQL itself."""
    tag = uuid.uuid4().hex
    name = f"refuse_{tag}"
    await ddl(stack.database_url, f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'refused by the test'; END $$""")
    await ddl(stack.database_url, f"""
        CREATE TRIGGER {name} BEFORE INSERT ON chat_messages FOR EACH ROW
        WHEN (NEW.role = 'assistant' AND NEW.content LIKE '%{tag}%') EXECUTE FUNCTION {name}()""")
    yield tag
    await ddl(stack.database_url, f"DROP TRIGGER {name} ON chat_messages")
    await ddl(stack.database_url, f"DROP FUNCTION {name}()")


async def ddl(database_url: str, statement: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def test_a_write_that_keeps_failing_ends_the_turn_and_frees_the_session(http, user, stack, scripted,
                                                                             temporal_client, refused_rows):
    tag = refused_rows
    scripted.script(tag, text_reply(f"An answer the database refuses {tag}"), text_reply("Working again."))
    session_id = await new_session(http, user)
    events = await asyncio.wait_for(send(http, user, session_id, f"go {tag}"), 60)
    errors = [e.part for e in events if e.part and e.part["type"] == "error"]
    assert errors and "could not be saved" in errors[-1]["errorText"]
    assert events[-1].part is None or events[-1].part["type"] == "finish"
    assert await turn_client.running_turn_state(temporal_client, session_id) is None
    assert assembled_text(await send(http, user, session_id, "next")) == "Working again."


async def test_a_failed_write_logs_no_content(http, user, stack, scripted, temporal_client, refused_rows, caplog):
    tag = refused_rows
    secret = f"private words {uuid.uuid4().hex}"
    scripted.script(tag, text_reply(f"{secret} {tag}"))
    session_id = await new_session(http, user)
    await asyncio.wait_for(send(http, user, session_id, f"go {tag}"), 60)
    assert secret not in caplog.text
    # Failure messages travel into the workflow history as plain text.
    history = await temporal_client.get_workflow_handle(turn_workflow_id(session_id)).fetch_history()
    assert secret not in history.to_json()
