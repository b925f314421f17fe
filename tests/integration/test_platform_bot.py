"""Chat-platform linking end to end on the real stack: the reference bot (`bot_adapter`) links a
server, members chat through it, every turn runs (and bills) as the owner's, the stream reaches
the bot, the owner's limits refuse it, and a deleted link refuses it at once."""

import asyncio
import logging

import pytest

from api.routers import platform_bot
from billing.spend import SpendWindows
from bot_adapter import BotApiClient, Conversation, LinkingBot, PlatformMessage
from stream_relay.connection import redis_client
from tests.support.helpers import db_rows, marker, new_session, slow_text
from tests.support.platform_bot import (
    BOT,
    BOT_TOKENS,
    LINKING,
    RecordingPlatform,
    bot_headers,
    confirm,
    link_dms,
    link_server,
    platform_id,
)
from tests.support.scripted_model import text_reply
from tests.support.servers import api_with
from tests.support.users import make_user


@pytest.fixture(scope="module")
async def http(settings, worker):
    async with api_with(settings, platform_bot_tokens=BOT_TOKENS) as client:
        yield client


@pytest.fixture
async def bot(http):
    platform = RecordingPlatform()
    client = BotApiClient(str(http.base_url), BOT_TOKENS["DISCORD"], "DISCORD", http=http)
    return LinkingBot(client, platform), platform


def said(conversation: Conversation, author: str, text: str, message_id: str | None = None) -> PlatformMessage:
    return PlatformMessage(conversation, f"member-{author}", author, text, message_id)


def guild(channel: str = "general") -> Conversation:
    return Conversation(platform_id("guild"), channel, "Test guild")


def in_channel(where: Conversation, channel: str) -> Conversation:
    return Conversation(where.platform_server_id, channel, where.server_name)


async def chat(http, where: Conversation, author: str, text: str, **headers):
    return await http.post(f"{BOT}/chat/turns", headers={**bot_headers(), **headers}, json={
        "platform": "DISCORD", "platform_user_id": f"member-{author}", "message": text,
        "platform_server_id": where.platform_server_id, "platform_channel_id": where.channel_id})


async def test_the_bot_links_a_server_and_two_members_chat_for_the_owner(http, bot, user, scripted, stack, caplog):
    linking_bot, platform = bot
    where = guild()
    tag = marker()
    scripted.script(tag, text_reply("Hello Alice."), text_reply("Hello Bob."))

    with caplog.at_level(logging.DEBUG):
        unlinked = await linking_bot.handle(said(where, "alice", f"hi {tag}"))
        assert unlinked.kind == "refused" and unlinked.error.code == "not_linked"
        assert "!link" in platform.sent[-1][1]

        offered = await linking_bot.handle(said(where, "alice", "!link"))
        assert offered.kind == "link_offered" and offered.text.startswith("http://127.0.0.1:3000/link/")
        token = offered.text.rsplit("/", 1)[1]
        assert (await confirm(http, user, token)).status_code == 200
        assert (await linking_bot.api.link_token_status(token)).status == "linked"

        first = await linking_bot.handle(said(where, "alice", f"hi {tag}"))
        second = await linking_bot.handle(said(where, "bob", "me too"))

    assert first.kind == "answered" and first.text == "Hello Alice."
    assert second.kind == "answered" and second.text == "Hello Bob."
    assert [reply.text for reply in platform.replies] == ["Hello Alice.", "Hello Bob."]
    assert all(reply.closed for reply in platform.replies)
    session_id = first.handle.session_id
    assert second.handle.session_id == session_id and first.handle.turn_id != second.handle.turn_id

    # Both turns are the owner's: the session, its usage rows, and what the model read.
    owner_sessions = (await http.get("/api/chat/sessions", headers=user.headers)).json()["sessions"]
    assert [s["id"] for s in owner_sessions] == [session_id]
    assert owner_sessions[0]["metadata"]["source"] == "platform-bot"
    usage = await db_rows(stack.database_url, "SELECT user_id, turn_id FROM model_usage WHERE session_id = :s "
                                              "ORDER BY created_at", s=session_id)
    assert [row["user_id"] for row in usage] == [user.id, user.id]
    assert {row["turn_id"] for row in usage} == {first.handle.turn_id, second.handle.turn_id}
    rows = await db_rows(stack.database_url, "SELECT content FROM chat_messages WHERE session_id = :s "
                                             "AND role = 'user' ORDER BY sequence", s=session_id)
    assert [row["content"] for row in rows] == [f"alice: hi {tag}", "bob: me too"]

    # Privacy: no log line holds the platform's ids of the server, the channel or the members.
    for raw in (where.platform_server_id, "member-alice", "member-bob"):
        assert raw not in caplog.text
    assert f"owner …{user.id[-8:]}" in caplog.text and user.id not in caplog.text


async def test_each_channel_has_its_session_and_a_server_session_cannot_see_the_owners_files(
        http, user, scripted):
    where = guild()
    await link_server(http, user, where.platform_server_id)
    tags = [marker(), marker()]
    for tag in tags:
        scripted.script(tag, text_reply("ok"))
    general = (await chat(http, where, "alice", f"one {tags[0]}")).json()
    random = (await chat(http, in_channel(where, "random"), "alice", f"two {tags[1]}")).json()
    assert general["session_id"] != random["session_id"]

    tools = {t["function"]["name"] for t in scripted.requests_for(tags[0])[0]["tools"]}
    assert "bash_exec" in tools and not tools & set(platform_bot.conversations.SERVER_DENIED_TOOLS)
    detail = (await http.get(f"/api/chat/sessions/{general['session_id']}", headers=user.headers)).json()
    assert detail["metadata"]["tool_filter"]["deny"] == list(platform_bot.conversations.SERVER_DENIED_TOOLS)


async def test_direct_messages_bill_the_person_and_never_fall_back(http, bot, user, scripted, stack):
    linking_bot, platform = bot
    dm = Conversation(None, None)
    tag = marker()
    scripted.script(tag, text_reply("Hi in private."))
    refused = await linking_bot.handle(said(dm, "carol", f"hello {tag}"))
    assert refused.kind == "refused" and refused.error.code == "not_linked"

    offered = await linking_bot.handle(said(dm, "carol", "!link"))
    assert (await confirm(http, user, offered.text.rsplit("/", 1)[1], flow="user")).status_code == 200
    answered = await linking_bot.handle(said(dm, "carol", f"hello {tag}"))
    assert answered.kind == "answered" and answered.text == "Hi in private."
    rows = await db_rows(stack.database_url, "SELECT content FROM chat_messages WHERE session_id = :s "
                                             "AND role = 'user'", s=answered.handle.session_id)
    assert rows == [{"content": f"hello {tag}"}]  # a DM is the person alone: no name prefix
    usage = await db_rows(stack.database_url, "SELECT user_id FROM model_usage WHERE session_id = :s",
                          s=answered.handle.session_id)
    assert usage == [{"user_id": user.id}]
    tools = {t["function"]["name"] for t in scripted.requests_for(tag)[0]["tools"]}
    assert "list_workspace_files" in tools  # the owner's own DMs keep every tool

    # A server's member with a DM link: the server still needs its own link.
    response = await chat(http, guild(), "carol", "hi")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_linked"


async def test_an_owner_over_the_spend_limit_is_refused(http, bot, settings, stack):
    linking_bot, platform = bot
    owner = make_user(settings)
    where = guild()
    await link_server(http, owner, where.platform_server_id)
    await SpendWindows(redis_client(settings.redis_url), settings).record(owner.id,
                                                                          settings.daily_cost_limit_microdollars)
    outcome = await linking_bot.handle(said(where, "alice", "anything"))
    assert outcome.kind == "refused" and outcome.error.status == 429 and outcome.error.code == "usage_limit"
    assert "daily" in platform.sent[-1][1]
    rows = await db_rows(stack.database_url, "SELECT m.id FROM chat_messages m JOIN chat_sessions s "
                                             "ON s.id = m.session_id WHERE s.user_id = :u", u=owner.id)
    assert rows == []


async def test_members_share_the_owners_message_rate(settings, worker, scripted):
    async with api_with(settings, platform_bot_tokens=BOT_TOKENS, message_rate_limit=2) as http:
        owner = make_user(settings)
        where = guild()
        await link_server(http, owner, where.platform_server_id)
        tag = marker()
        scripted.script(tag, text_reply("ok"))
        first = await chat(http, where, "alice", f"one {tag}")
        second = await chat(http, in_channel(where, "other"), "bob", f"two {tag}")
        third = await chat(http, in_channel(where, "third"), "carol", "three")
        assert [first.status_code, second.status_code] == [200, 200]
        assert third.status_code == 429 and third.json()["error"]["code"] == "rate_limited"
        assert "retry-after" in third.headers


async def test_a_deleted_link_refuses_at_once(http, user, scripted):
    where = guild()
    link = await link_server(http, user, where.platform_server_id)
    tag = marker()
    scripted.script(tag, text_reply("still here"))
    handle = (await chat(http, where, "alice", f"hi {tag}")).json()
    stream = await http.get(f"{BOT}/sessions/{handle['session_id']}/stream", params={"turn_id": handle["turn_id"]},
                            headers=bot_headers())
    assert stream.status_code == 200 and "still" in stream.text and stream.text.rstrip().endswith("data: [DONE]")

    assert (await http.delete(f"{LINKING}/links/{link['id']}", headers=user.headers)).status_code == 200
    refused = await chat(http, where, "alice", "hello?")
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_linked"
    for method, path in (("GET", "stream"), ("POST", "stop")):
        response = await http.request(method, f"{BOT}/sessions/{handle['session_id']}/{path}", headers=bot_headers())
        assert response.status_code == 404
    # The owner keeps the conversation's session.
    assert (await http.get(f"/api/chat/sessions/{handle['session_id']}", headers=user.headers)).status_code == 200


async def test_the_bot_reaches_only_its_own_conversations(http, user, scripted):
    own = await new_session(http, user)  # the owner's browser session
    for method, path in (("GET", "stream"), ("POST", "stop")):
        assert (await http.request(method, f"{BOT}/sessions/{own}/{path}", headers=bot_headers())).status_code == 404
    where = guild()
    await link_server(http, user, where.platform_server_id)
    tag = marker()
    scripted.script(tag, text_reply("ok"))
    handle = (await chat(http, where, "alice", f"hi {tag}")).json()
    telegram = {"Authorization": f"Bearer {BOT_TOKENS['TELEGRAM']}"}
    assert (await http.get(f"{BOT}/sessions/{handle['session_id']}/stream", headers=telegram)).status_code == 404


async def test_a_message_while_a_turn_runs_is_queued_and_the_running_stream_answers_it(http, bot, user, scripted):
    linking_bot, platform = bot
    where = guild()
    await link_server(http, user, where.platform_server_id)
    tag = marker()
    scripted.script(tag, slow_text(words=20, delay=0.05), text_reply("Answer to bob."))

    first_task = asyncio.create_task(linking_bot.handle(said(where, "alice", f"tell me {tag}")))
    await asyncio.sleep(0.4)  # the first turn is streaming
    queued = await linking_bot.handle(said(where, "bob", "and me"))
    first = await first_task
    assert queued.kind == "queued" and queued.handle.turn_id == first.handle.turn_id
    assert first.text.startswith("w0 w1") and first.text.endswith("Answer to bob.")


async def test_stop_through_the_bot(http, bot, user, scripted):
    linking_bot, platform = bot
    where = guild()
    await link_server(http, user, where.platform_server_id)
    tag = marker()
    scripted.script(tag, slow_text(words=200, delay=0.05))
    running = asyncio.create_task(linking_bot.handle(said(where, "alice", f"go {tag}")))
    await asyncio.sleep(0.5)
    stopped = await linking_bot.handle(said(where, "alice", "!stop"))
    assert stopped.kind == "stopped" and stopped.text == "Stopped."
    answered = await asyncio.wait_for(running, 10)
    assert answered.kind == "answered" and len(answered.text.split()) < 200


async def test_a_retried_message_with_the_same_key_runs_once(http, user, scripted, stack):
    where = guild()
    await link_server(http, user, where.platform_server_id)
    tag = marker()
    scripted.script(tag, text_reply("once"))
    first = await chat(http, where, "alice", f"hi {tag}", **{"Idempotency-Key": "discord-msg-1"})
    again = await chat(http, where, "alice", f"hi {tag}", **{"Idempotency-Key": "discord-msg-1"})
    assert first.status_code == again.status_code == 200
    assert first.json()["turn_id"] == again.json()["turn_id"]
    rows = await db_rows(stack.database_url, "SELECT count(*) AS n FROM chat_messages WHERE session_id = :s AND "
                                             "role = 'user'", s=first.json()["session_id"])
    assert rows == [{"n": 1}]


async def test_chat_refusals(http, user, monkeypatch):
    where = guild()
    response = await http.post(f"{BOT}/chat/turns", headers=bot_headers(), json={
        "platform": "DISCORD", "platform_user_id": "member-a", "platform_server_id": where.platform_server_id,
        "message": "no channel"})
    assert response.status_code == 422
    await link_server(http, user, where.platform_server_id)
    # A blank message is refused by the schema (invalid_request), a long one by the server's limit.
    for message, code in (("", "invalid_request"), ("   ", "invalid_request"), ("x" * 32_001, "invalid_message")):
        response = await chat(http, where, "alice", message)
        assert response.status_code == 422 and response.json()["error"]["code"] == code
    response = await chat(http, where, "alice", "nul \u0000")
    assert response.status_code == 422

    monkeypatch.setattr(platform_bot, "STREAM_OPEN_WAIT_SECONDS", 0.1)
    handle = (await chat(http, where, "alice", "hi")).json()
    unknown = await http.get(f"{BOT}/sessions/{handle['session_id']}/stream", headers=bot_headers(),
                             params={"turn_id": "00000000-0000-0000-0000-000000000000"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "no_turn"
    bad = await http.get(f"{BOT}/sessions/{handle['session_id']}/stream", headers=bot_headers(),
                         params={"turn_id": "../../x"})
    assert bad.status_code == 422


async def test_first_messages_at_once_make_one_session(http, user, scripted, stack):
    where = guild()
    link = await link_server(http, user, where.platform_server_id)
    tag = marker()
    scripted.script(tag, text_reply("ok"))
    responses = await asyncio.gather(*(chat(http, where, name, f"hi {tag}") for name in ("a", "b", "c", "d")))
    assert {r.status_code for r in responses} <= {200, 202}
    assert len({r.json()["session_id"] for r in responses}) == 1
    rows = await db_rows(stack.database_url, "SELECT count(*) AS n FROM platform_conversations "
                                             "WHERE server_link_id = :l", l=link["id"])
    assert rows == [{"n": 1}]


async def test_dm_links_are_their_own(http, user, settings):
    other = make_user(settings)
    person = platform_id("person")
    link = await link_dms(http, user, person)
    response = await http.post(f"{BOT}/chat/turns", headers=bot_headers(), json={
        "platform": "DISCORD", "platform_user_id": platform_id("person"), "message": "not linked"})
    assert response.status_code == 404
    assert (await http.delete(f"{LINKING}/user-links/{link['id']}", headers=other.headers)).status_code == 403
