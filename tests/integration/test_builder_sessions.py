"""Builder-bound sessions: get-or-create per (user, graph) (the seed's four cases, and two calls at once),
through the function and through `POST /api/chat/sessions`, and the tool scope their turns get."""

import asyncio

import pytest
from sqlalchemy import delete

from agent_graphs.local_store import LocalGraphStore
from agent_graphs.store import GraphNotFound
from conversation.builder_sessions import get_or_create_builder_session
from conversation.sessions import ensure_user
from database import session_maker
from models.agent_graph import GraphContent
from models.db import ChatSession
from models.tool_filter import BUILDER_BLOCKED_TOOLS
from tests.support.helpers import db_rows, marker, send
from tests.support.scripted_model import text_reply
from tests.support.users import make_user


@pytest.fixture
def sessions(settings):
    return session_maker(settings.database_url)


@pytest.fixture
def graphs(sessions) -> LocalGraphStore:
    return LocalGraphStore(sessions)


async def owned_graph(sessions, graphs, user_id: str) -> str:
    async with sessions.begin() as db:
        await ensure_user(db, user_id)
    return (await graphs.create(user_id, GraphContent(name="Built"))).id


async def pointer(stack, user_id: str, graph_id: str) -> list[dict]:
    return await db_rows(stack.database_url, "SELECT session_id FROM builder_chat_sessions WHERE user_id = :u AND "
                                             "graph_id = :g", u=user_id, g=graph_id)


async def sessions_of(stack, user_id: str) -> list[dict]:
    return await db_rows(stack.database_url, "SELECT id, builder_graph_id FROM chat_sessions WHERE user_id = :u",
                         u=user_id)


async def get_or_create(sessions, graphs, user_id, graph_id):
    async with sessions() as db:
        return await get_or_create_builder_session(db, graphs, user_id, graph_id)


# -- get_or_create_builder_session (the seed's model_test.py cases) --

async def test_raises_when_graph_not_owned(sessions, graphs, settings, stack):
    owner, stranger = make_user(settings).id, make_user(settings).id
    graph_id = await owned_graph(sessions, graphs, owner)
    with pytest.raises(GraphNotFound):
        await get_or_create(sessions, graphs, stranger, graph_id)
    assert await sessions_of(stack, stranger) == [] and await pointer(stack, stranger, graph_id) == []


async def test_returns_existing_when_owned(sessions, graphs, settings, stack):
    owner = make_user(settings).id
    graph_id = await owned_graph(sessions, graphs, owner)
    first, created = await get_or_create(sessions, graphs, owner, graph_id)
    again, created_again = await get_or_create(sessions, graphs, owner, graph_id)
    assert created and not created_again and again.id == first.id
    assert len(await sessions_of(stack, owner)) == 1 and await pointer(stack, owner, graph_id) == [
        {"session_id": first.id}]


async def test_writes_pointer_on_create(sessions, graphs, settings, stack):
    owner = make_user(settings).id
    graph_id = await owned_graph(sessions, graphs, owner)
    session, _ = await get_or_create(sessions, graphs, owner, graph_id)
    assert session.builder_graph_id == graph_id and session.dry_run is False
    assert await pointer(stack, owner, graph_id) == [{"session_id": session.id}]
    assert await sessions_of(stack, owner) == [{"id": session.id, "builder_graph_id": graph_id}]


async def test_recreates_when_pointer_stale(sessions, graphs, settings, stack):
    owner = make_user(settings).id
    graph_id = await owned_graph(sessions, graphs, owner)
    old, _ = await get_or_create(sessions, graphs, owner, graph_id)
    async with sessions.begin() as db:
        await db.execute(delete(ChatSession).where(ChatSession.id == old.id))
    assert await pointer(stack, owner, graph_id) == [{"session_id": old.id}]  # stale now
    new, created = await get_or_create(sessions, graphs, owner, graph_id)
    assert created and new.id != old.id and await pointer(stack, owner, graph_id) == [{"session_id": new.id}]


async def test_two_calls_at_once_get_one_session(sessions, graphs, settings, stack):
    owner = make_user(settings).id
    graph_id = await owned_graph(sessions, graphs, owner)
    results = await asyncio.gather(*(get_or_create(sessions, graphs, owner, graph_id) for _ in range(4)))
    assert len({session.id for session, _ in results}) == 1 and sum(created for _, created in results) == 1
    assert len(await sessions_of(stack, owner)) == 1


# -- through the API --

async def graph_via_api(http, user) -> str:
    response = await http.post("/api/graphs", json={"name": "Mine"}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def open_builder(http, user, graph_id: str, **body):
    return await http.post("/api/chat/sessions", json={"builder_graph_id": graph_id, **body}, headers=user.headers)


async def test_the_builder_chat_is_created_once_then_found_again(http, user):
    graph_id = await graph_via_api(http, user)
    created = await open_builder(http, user, graph_id, title="Builder", dry_run=True)
    assert created.status_code == 201
    body = created.json()
    assert body["builder_graph_id"] == graph_id and body["title"] == "Builder"
    assert body["dry_run"] is False  # a builder chat is never a dry run
    again = await open_builder(http, user, graph_id)
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    read = (await http.get(f"/api/chat/sessions/{body['id']}", headers=user.headers)).json()
    assert read["builder_graph_id"] == graph_id


async def test_two_tabs_opening_a_new_builder_chat_at_once_share_it(http, user):
    graph_id = await graph_via_api(http, user)
    tabs = await asyncio.gather(*(open_builder(http, user, graph_id) for _ in range(2)))
    assert sorted(r.status_code for r in tabs) == [200, 201] and len({r.json()["id"] for r in tabs}) == 1


async def test_a_graph_not_owned_is_a_404_and_nothing_is_created(http, user, settings, stack):
    graph_id = await graph_via_api(http, user)
    stranger = make_user(settings)
    for graph in (graph_id, "no-such-graph"):
        response = await open_builder(http, stranger, graph)
        assert response.status_code == 404
        assert response.json() == {"error": {"code": "not_found", "message": "No such agent graph."}}
    assert await db_rows(stack.database_url, "SELECT id FROM users WHERE id = :u", u=stranger.id) == []


async def test_deleting_the_builder_chat_makes_the_next_open_a_new_one(http, user):
    graph_id = await graph_via_api(http, user)
    first = (await open_builder(http, user, graph_id)).json()["id"]
    assert (await http.delete(f"/api/chat/sessions/{first}", headers=user.headers)).status_code == 204
    reopened = await open_builder(http, user, graph_id)
    assert reopened.status_code == 201 and reopened.json()["id"] != first


async def test_a_builder_turn_never_offers_the_blocked_tools(http, user, scripted):
    """The deny-list is the server's, on every send: a tool filter from the client cannot undo it."""
    graph_id = await graph_via_api(http, user)
    session_id = (await open_builder(http, user, graph_id, tool_filter={"allow": list(BUILDER_BLOCKED_TOOLS) +
                                                                        ["edit_agent", "get_current_time"]})).json()["id"]
    tag = marker()
    scripted.script(tag, text_reply("Ready."))
    await send(http, user, session_id, f"{tag} hello")
    offered = {t["function"]["name"] for t in scripted.requests_for(tag)[0]["tools"]}
    assert offered == {"edit_agent", "get_current_time"}
    plain = (await http.post("/api/chat/sessions", json={}, headers=user.headers)).json()["id"]
    other = marker()
    scripted.script(other, text_reply("Ready."))
    await send(http, user, plain, f"{other} hello")
    assert set(BUILDER_BLOCKED_TOOLS) - {"customize_agent"} <= {
        t["function"]["name"] for t in scripted.requests_for(other)[0]["tools"]}
