"""The model's context: read from Postgres once per worker and then only what was added, and
never carried through workflow history."""

import base64
import re
import uuid

from sqlalchemy import text

from activities.store import insert_rows
from conversation.context import ContextCache
from conversation.sessions import create_session
from database import session_maker
from models.turn import NewMessageRow, ToolCall
from tests.support.helpers import marker, new_session, send
from tests.support.scripted_model import text_reply


async def test_each_round_reads_only_the_rows_added_since_the_last(settings):
    sessions = session_maker(settings.database_url)
    async with sessions() as db:
        session = await create_session(db, f"user-{uuid.uuid4().hex[:8]}", None, {})
    async with sessions.begin() as db:
        await insert_rows(db, session.id, "turn-1", [
            NewMessageRow(key="u1", role="user", content="first question"),
            NewMessageRow(key="a1", role="assistant", content="", tool_calls=[ToolCall(id="c1", name="get_current_time")]),
            NewMessageRow(key="r1", role="reasoning", content="thinking"),
        ])
    cache = ContextCache(sessions)
    first = await cache.history(session.id)
    assert [(m.role, m.content) for m in first[1:]] == [("user", "first question"), ("assistant", ""),
                                                       ("tool", first[-1].content)]  # the open call is closed

    async with sessions.begin() as db:
        # Rows are only ever appended; an edit of an old row proves the second read does not re-read it.
        await db.execute(text("UPDATE chat_messages SET content = 'edited' WHERE session_id = :s AND sequence = 1"),
                         {"s": session.id})
        await insert_rows(db, session.id, "turn-1", [
            NewMessageRow(key="t1", role="tool", content='{"time": "noon"}', tool_call_id="c1"),
            NewMessageRow(key="a2", role="assistant", content="It is noon."),
        ])
    second = await cache.history(session.id)
    assert [(m.role, m.content) for m in second[1:]] == [
        ("user", "first question"), ("assistant", ""), ("tool", '{"time": "noon"}'), ("assistant", "It is noon.")]
    assert (await ContextCache(sessions).history(session.id))[1].content == "edited"  # a new worker reads it all


async def test_the_conversation_does_not_travel_through_workflow_history(http, user, scripted, temporal_client):
    tag = marker()
    secret_of_the_first_turn = f"a long earlier answer {uuid.uuid4().hex}"
    scripted.script(tag, text_reply(secret_of_the_first_turn), text_reply("second answer"))
    session_id = await new_session(http, user)
    await send(http, user, session_id, f"{tag} one")
    await send(http, user, session_id, f"{tag} two")

    second_request = scripted.requests_for(tag)[-1]
    assert secret_of_the_first_turn in [m["content"] for m in second_request["messages"]]
    history = await temporal_client.get_workflow_handle(f"copilot-turn/{session_id}").fetch_history()
    # Every payload in the history (inputs and results of activities, updates, signals), decoded.
    payloads = [base64.b64decode(p) for p in re.findall(r'"data": "([A-Za-z0-9+/=]+)"', history.to_json())]
    assert payloads and not any(secret_of_the_first_turn.encode() in p for p in payloads)
