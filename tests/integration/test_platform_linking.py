"""Chat-platform linking, the person's side and the tokens: every route and refusal of
`/api/platform-linking`, the token lifecycle (pending, linked, expired, superseded), race-free
confirms, and the separation of user JWTs from bot credentials."""

import asyncio

import pytest

from tests.support.helpers import db_rows
from tests.support.platform_bot import (
    BOT,
    BOT_TOKENS,
    LINKING,
    bot_headers,
    confirm,
    execute,
    expire_token,
    link_dms,
    link_server,
    platform_id,
    server_token,
    user_token,
)
from tests.support.servers import api_with
from tests.support.users import make_user


@pytest.fixture(scope="module")
async def http(settings, worker):
    """The API with bot credentials configured (the shared one has none)."""
    async with api_with(settings, platform_bot_tokens=BOT_TOKENS) as client:
        yield client


def error_of(response) -> str:
    return response.json()["error"]["code"]


async def token_status(http, token: str, platform: str = "DISCORD") -> str:
    response = await http.get(f"{BOT}/link-tokens/{token}", headers=bot_headers(platform))
    assert response.status_code == 200, response.text
    return response.json()["status"]


# --- token info ---

async def test_token_info_shows_display_info_and_no_platform_id(http, user):
    server = platform_id("guild")
    token = await server_token(http, server, "Guild of Ada")
    assert token["link_url"] == f"http://127.0.0.1:3000/link/{token['token']}"
    assert len(token["token"]) <= 64
    response = await http.get(f"{LINKING}/tokens/{token['token']}/info", headers=user.headers)
    assert response.status_code == 200
    body = response.json()
    assert body == {"platform": "DISCORD", "link_type": "SERVER", "display_name": "Guild of Ada",
                    "expires_at": token["expires_at"]}
    assert server not in response.text


async def test_token_info_refusals(http, user, stack):
    response = await http.get(f"{LINKING}/tokens/{'a' * 43}/info", headers=user.headers)
    assert response.status_code == 404 and error_of(response) == "not_found"

    expired = (await server_token(http, platform_id("guild")))["token"]
    await expire_token(stack.database_url, expired)
    response = await http.get(f"{LINKING}/tokens/{expired}/info", headers=user.headers)
    assert response.status_code == 410 and error_of(response) == "link_token_expired"
    assert response.json()["error"]["details"] == {"reason": "expired"}

    used = (await server_token(http, platform_id("guild")))["token"]
    assert (await confirm(http, user, used)).status_code == 200
    response = await http.get(f"{LINKING}/tokens/{used}/info", headers=user.headers)
    assert response.status_code == 410 and response.json()["error"]["details"] == {"reason": "used"}


async def test_token_info_needs_a_signed_in_user(http):
    token = (await server_token(http, platform_id("guild")))["token"]
    assert (await http.get(f"{LINKING}/tokens/{token}/info")).status_code == 401


# --- confirm ---

async def test_confirm_links_the_server_once(http, user, stack):
    server = platform_id("guild")
    token = (await server_token(http, server, "My guild"))["token"]
    response = await confirm(http, user, token)
    assert response.status_code == 200
    link = response.json()
    assert link["platform"] == "DISCORD" and link["platform_server_id"] == server
    assert link["server_name"] == "My guild" and link["id"]

    again = await confirm(http, user, token)
    assert again.status_code == 410 and again.json()["error"]["details"] == {"reason": "used"}
    assert await token_status(http, token) == "linked"
    rows = await db_rows(stack.database_url, "SELECT owner_user_id FROM platform_server_links "
                                             "WHERE platform_server_id = :s", s=server)
    assert rows == [{"owner_user_id": user.id}]


async def test_confirm_user_link(http, user):
    person = platform_id("person")
    token = (await user_token(http, person, "ada#1"))["token"]
    response = await confirm(http, user, token, flow="user")
    assert response.status_code == 200
    assert response.json()["platform_user_id"] == person and response.json()["platform_username"] == "ada#1"
    listed = (await http.get(f"{LINKING}/user-links", headers=user.headers)).json()
    assert [link["id"] for link in listed] == [response.json()["id"]]


async def test_confirm_refusals(http, user, stack):
    for flow in ("server", "user"):
        response = await confirm(http, user, "no-such-token", flow=flow)
        assert response.status_code == 404 and error_of(response) == "not_found"

    server_tok = (await server_token(http, platform_id("guild")))["token"]
    user_tok = (await user_token(http, platform_id("person")))["token"]
    wrong = await confirm(http, user, server_tok, flow="user")
    assert wrong.status_code == 400 and error_of(wrong) == "link_flow_mismatch"
    wrong = await confirm(http, user, user_tok, flow="server")
    assert wrong.status_code == 400 and error_of(wrong) == "link_flow_mismatch"
    assert await token_status(http, server_tok) == "pending"  # a refused confirm uses nothing

    await expire_token(stack.database_url, server_tok)
    expired = await confirm(http, user, server_tok)
    assert expired.status_code == 410 and expired.json()["error"]["details"] == {"reason": "expired"}
    assert await token_status(http, server_tok) == "expired"


@pytest.mark.parametrize("owner_is_caller", [True, False])
async def test_confirm_of_a_target_linked_meanwhile_is_409(http, user, settings, stack, owner_is_caller):
    """A link made while the token was open (the bot refuses new tokens for a linked server, so
    this is the race): 409, and the token stays unused."""
    other = make_user(settings)
    for flow, table, column, owner_column in (("server", "platform_server_links", "platform_server_id",
                                               "owner_user_id"),
                                              ("user", "platform_user_links", "platform_user_id", "user_id")):
        target = platform_id(flow)
        token = (await (server_token(http, target) if flow == "server" else user_token(http, target)))["token"]
        owner = user if owner_is_caller else other
        await execute(stack.database_url, "INSERT INTO users (id, tier, created_at) VALUES (:u, 'FREE', now()) "
                                          "ON CONFLICT DO NOTHING", u=owner.id)
        await execute(stack.database_url, f"INSERT INTO {table} (id, platform, {column}, {owner_column}, created_at) "
                                          "VALUES (gen_random_uuid()::text, 'DISCORD', :t, :o, now())",
                      t=target, o=owner.id)
        response = await confirm(http, user, token, flow=flow)
        assert response.status_code == 409 and error_of(response) == "already_linked"
        assert ("your account" if owner_is_caller else "another account") in response.json()["error"]["message"]
        assert await token_status(http, token) == "pending"


async def test_a_linked_target_gets_no_new_token(http, user):
    server = platform_id("guild")
    await link_server(http, user, server)
    response = await http.post(f"{BOT}/link-tokens/server", headers=bot_headers(),
                               json={"platform": "DISCORD", "platform_server_id": server})
    assert response.status_code == 409 and error_of(response) == "already_linked"
    person = platform_id("person")
    await link_dms(http, user, person)
    response = await http.post(f"{BOT}/link-tokens/user", headers=bot_headers(),
                               json={"platform": "DISCORD", "platform_user_id": person})
    assert response.status_code == 409 and error_of(response) == "already_linked"


# --- supersede ---

async def test_a_new_token_supersedes_the_open_one(http, user):
    for flow in ("server", "user"):
        target = platform_id(flow)
        issue = server_token if flow == "server" else user_token
        first, second = (await issue(http, target))["token"], (await issue(http, target))["token"]
        assert await token_status(http, first) == "superseded"
        assert await token_status(http, second) == "pending"
        info = await http.get(f"{LINKING}/tokens/{first}/info", headers=user.headers)
        assert info.status_code == 410 and info.json()["error"]["details"] == {"reason": "superseded"}
        assert (await confirm(http, user, first, flow=flow)).status_code == 410
        assert (await confirm(http, user, second, flow=flow)).status_code == 200
        assert await token_status(http, first) == "superseded"  # never linked by itself


async def test_tokens_issued_at_once_leave_one_open(http, stack):
    server = platform_id("guild")
    tokens = await asyncio.gather(*(server_token(http, server) for _ in range(8)))
    statuses = [await token_status(http, t["token"]) for t in tokens]
    assert statuses.count("pending") == 1 and statuses.count("superseded") == 7
    rows = await db_rows(stack.database_url, "SELECT count(*) AS open FROM platform_link_tokens WHERE target_id = :s "
                                             "AND used_at IS NULL AND superseded_at IS NULL", s=server)
    assert rows == [{"open": 1}]


# --- concurrent confirms ---

@pytest.mark.parametrize("flow", ["server", "user"])
@pytest.mark.parametrize("people", [1, 2])
async def test_concurrent_confirms_make_one_link_and_one_winner(http, settings, stack, flow, people):
    confirmers = [make_user(settings) for _ in range(people)]
    target = platform_id(flow)
    token = (await (server_token(http, target) if flow == "server" else user_token(http, target)))["token"]
    attempts = [confirmers[i % people] for i in range(12)]
    responses = await asyncio.gather(*(confirm(http, who, token, flow=flow) for who in attempts))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [410] * 11
    assert all(r.json()["error"]["details"] == {"reason": "used"} for r in responses if r.status_code == 410)
    winner = attempts[[r.status_code for r in responses].index(200)]
    table, column, owner = (("platform_server_links", "platform_server_id", "owner_user_id") if flow == "server"
                            else ("platform_user_links", "platform_user_id", "user_id"))
    rows = await db_rows(stack.database_url, f"SELECT {owner} AS owner FROM {table} WHERE {column} = :t", t=target)
    assert rows == [{"owner": winner.id}]
    used = await db_rows(stack.database_url, "SELECT used_by_user_id FROM platform_link_tokens WHERE token = :t",
                         t=token)
    assert used == [{"used_by_user_id": winner.id}]


# --- list and delete ---

async def test_lists_show_only_the_callers_links(http, user, settings):
    other = make_user(settings)
    mine = await link_server(http, user, platform_id("guild"), "mine")
    await link_server(http, other, platform_id("guild"), "theirs")
    listed = (await http.get(f"{LINKING}/links", headers=user.headers)).json()
    assert listed == [mine]
    assert (await http.get(f"{LINKING}/user-links", headers=user.headers)).json() == []


@pytest.mark.parametrize("flow", ["server", "user"])
async def test_delete_is_the_owners_alone(http, user, settings, flow):
    other = make_user(settings)
    route = "links" if flow == "server" else "user-links"
    link = await (link_server(http, user, platform_id("guild")) if flow == "server"
                  else link_dms(http, user, platform_id("person")))

    refused = await http.delete(f"{LINKING}/{route}/{link['id']}", headers=other.headers)
    assert refused.status_code == 403 and error_of(refused) == "not_link_owner"
    assert (await http.get(f"{LINKING}/{route}", headers=user.headers)).json() == [link]

    deleted = await http.delete(f"{LINKING}/{route}/{link['id']}", headers=user.headers)
    assert deleted.status_code == 200 and deleted.json() == {"id": link["id"], "deleted": True}
    assert (await http.get(f"{LINKING}/{route}", headers=user.headers)).json() == []
    again = await http.delete(f"{LINKING}/{route}/{link['id']}", headers=user.headers)
    assert again.status_code == 404 and error_of(again) == "not_found"


@pytest.mark.parametrize("route", ["links", "user-links"])
@pytest.mark.parametrize("link_id", ["'; DROP TABLE links;--", "../../etc/passwd", "", "00000000-0000-0000-0000-"
                                     "000000000000", "1 OR 1=1", "%00"])
async def test_weird_link_ids_are_404(http, user, stack, route, link_id):
    # An empty id is `DELETE .../links/`, redirected to `.../links` (which takes GET): a 405.
    response = await http.delete(f"{LINKING}/{route}/{link_id}", headers=user.headers, follow_redirects=True)
    assert response.status_code in (404, 405)
    assert response.json()["error"]["code"] in ("not_found", "method_not_allowed")
    assert "Traceback" not in response.text and "SELECT" not in response.text
    assert await db_rows(stack.database_url, "SELECT count(*) >= 0 AS ok FROM platform_server_links") == [{"ok": True}]


# --- adversarial token paths ---

TOKEN_ROUTES = [("GET", "tokens/{}/info"), ("POST", "tokens/{}/confirm"), ("POST", "user-tokens/{}/confirm")]


@pytest.mark.parametrize("method,route", TOKEN_ROUTES)
async def test_malformed_tokens_are_422(http, user, method, route):
    for token in ("bad%24token", "a" * 65, "has%20space", "semi%3Bcolon"):
        response = await http.request(method, f"{LINKING}/{route.format(token)}", headers=user.headers)
        assert response.status_code == 422, token
        assert response.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize("method,route", TOKEN_ROUTES)
async def test_path_traversal_tokens_go_nowhere(http, user, method, route):
    for token in ("..%2F..", "foo..bar", "foo%2Fbar", "..", "%2e%2e"):
        response = await http.request(method, f"{LINKING}/{route.format(token)}", headers=user.headers)
        assert response.status_code in (404, 405, 422), token


@pytest.mark.parametrize("method,route", TOKEN_ROUTES)
async def test_well_formed_unknown_tokens_pass_validation(http, user, method, route):
    for token in ("a" * 64, "abc-_XYZ123-_abc"):
        response = await http.request(method, f"{LINKING}/{route.format(token)}", headers=user.headers)
        assert response.status_code == 404 and error_of(response) == "not_found"


async def test_bot_token_status_path_is_validated(http):
    assert (await http.get(f"{BOT}/link-tokens/bad%24token", headers=bot_headers())).status_code == 422
    assert (await http.get(f"{BOT}/link-tokens/{'a' * 65}", headers=bot_headers())).status_code == 422
    assert (await http.get(f"{BOT}/link-tokens/{'a' * 64}", headers=bot_headers())).status_code == 404


# --- the two credentials never cross ---

BOT_ROUTES = [("POST", "/servers/resolve", {"platform": "DISCORD", "platform_server_id": "g"}),
              ("POST", "/users/resolve", {"platform": "DISCORD", "platform_user_id": "p"}),
              ("POST", "/link-tokens/server", {"platform": "DISCORD", "platform_server_id": "g"}),
              ("POST", "/link-tokens/user", {"platform": "DISCORD", "platform_user_id": "p"}),
              ("GET", f"/link-tokens/{'a' * 43}", None),
              ("POST", "/chat/turns", {"platform": "DISCORD", "platform_user_id": "p", "message": "hi"}),
              ("GET", "/sessions/00000000-0000-0000-0000-000000000000/stream", None),
              ("POST", "/sessions/00000000-0000-0000-0000-000000000000/stop", None)]
USER_ROUTES = [("GET", f"/tokens/{'a' * 43}/info"), ("POST", f"/tokens/{'a' * 43}/confirm"),
               ("POST", f"/user-tokens/{'a' * 43}/confirm"), ("GET", "/links"), ("GET", "/user-links"),
               ("DELETE", "/links/00000000-0000-0000-0000-000000000000"),
               ("DELETE", "/user-links/00000000-0000-0000-0000-000000000000")]


@pytest.mark.parametrize("method,path,body", BOT_ROUTES)
async def test_a_user_jwt_never_reaches_the_bot_api(http, settings, method, path, body):
    admin = make_user(settings)
    for headers in (admin.headers, {}, {"Authorization": "Bearer not-a-token"},
                    {"Authorization": f"Bearer {BOT_TOKENS['DISCORD']}x"}):
        response = await http.request(method, BOT + path, json=body, headers=headers)
        assert response.status_code == 401 and error_of(response) == "unauthorized"
    assert "not a user's token" in (await http.request(method, BOT + path, json=body,
                                                       headers=admin.headers)).json()["error"]["message"]


@pytest.mark.parametrize("method,path", USER_ROUTES + [("GET", "/api/chat/sessions"), ("GET", "/api/chat/usage")])
async def test_a_bot_token_never_reaches_a_user_route(http, method, path):
    full = path if path.startswith("/api/") else LINKING + path
    for platform in BOT_TOKENS:
        response = await http.request(method, full, headers=bot_headers(platform))
        assert response.status_code == 401 and error_of(response) == "unauthorized"


async def test_a_bot_acts_for_its_own_platform_only(http, user):
    body = {"platform": "DISCORD", "platform_server_id": platform_id("guild")}
    response = await http.post(f"{BOT}/link-tokens/server", headers=bot_headers("TELEGRAM"), json=body)
    assert response.status_code == 403 and error_of(response) == "wrong_platform"
    response = await http.post(f"{BOT}/servers/resolve", headers=bot_headers("TELEGRAM"), json=body)
    assert response.status_code == 403
    discord_token = (await server_token(http, body["platform_server_id"]))["token"]
    response = await http.get(f"{BOT}/link-tokens/{discord_token}", headers=bot_headers("TELEGRAM"))
    assert response.status_code == 404
    # The same server id on another platform is another server.
    telegram = await server_token(http, body["platform_server_id"], platform="TELEGRAM")
    assert await token_status(http, telegram["token"], "TELEGRAM") == "pending"
    assert await token_status(http, discord_token) == "pending"


async def test_resolve_says_linked_never_to_whom(http, user):
    server, person = platform_id("guild"), platform_id("person")
    unlinked = await http.post(f"{BOT}/servers/resolve", headers=bot_headers(),
                               json={"platform": "DISCORD", "platform_server_id": server})
    assert unlinked.json() == {"linked": False, "link_id": None, "linked_at": None}
    link = await link_server(http, user, server)
    linked = (await http.post(f"{BOT}/servers/resolve", headers=bot_headers(),
                              json={"platform": "DISCORD", "platform_server_id": server})).json()
    assert linked == {"linked": True, "link_id": link["id"], "linked_at": link["linked_at"]}
    # No DM fallback: the server's owner has not linked this person's DMs.
    dm = await http.post(f"{BOT}/users/resolve", headers=bot_headers(),
                         json={"platform": "DISCORD", "platform_user_id": person})
    assert dm.json()["linked"] is False
    await link_dms(http, user, person)
    dm = await http.post(f"{BOT}/users/resolve", headers=bot_headers(),
                         json={"platform": "DISCORD", "platform_user_id": person})
    assert dm.json()["linked"] is True and user.id not in dm.text


async def test_bot_bodies_are_validated(http):
    for body in ({"platform": "MYSPACE", "platform_server_id": "g"},
                 {"platform": "DISCORD", "platform_server_id": ""},
                 {"platform": "DISCORD", "platform_server_id": "a" * 256},
                 {"platform": "DISCORD", "platform_server_id": "has space"},
                 {"platform": "DISCORD", "platform_server_id": "g", "extra": 1},
                 {"platform": "DISCORD", "platform_server_id": "g", "server_name": "nul\u0000"}):
        response = await http.post(f"{BOT}/link-tokens/server", headers=bot_headers(), json=body)
        assert response.status_code == 422, body
