"""Bad input gets a clear 4xx JSON error, and nothing is written."""

import pytest

from tests.support.helpers import db_rows, new_session
from tests.support.users import make_user


async def count_messages(database_url: str) -> int:
    return (await db_rows(database_url, "SELECT count(*) AS n FROM chat_messages"))[0]["n"]


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code and body["error"]["message"]


@pytest.mark.parametrize("payload, code", [
    ({"message": ""}, "invalid_request"),  # blank: refused by the schema (minLength, pattern)
    ({"message": "   \n "}, "invalid_request"),
    ({"message": "x" * 100_001}, "invalid_message"),
    ({"text": "wrong field"}, "invalid_request"),
    ({"message": 42}, "invalid_request"),
])
async def test_bad_messages_are_refused_and_nothing_is_written(http, user, stack, payload, code):
    session_id = await new_session(http, user)
    before = await count_messages(stack.database_url)

    response = await http.post(f"/api/chat/sessions/{session_id}/stream", json=payload, headers=user.headers)

    assert_error(response, 422, code)
    assert await count_messages(stack.database_url) == before
    detail = (await http.get(f"/api/chat/sessions/{session_id}", headers=user.headers)).json()
    assert detail["messages"] == [] and detail["active_turn"] is None


async def test_malformed_json(http, user, stack):
    session_id = await new_session(http, user)
    response = await http.post(f"/api/chat/sessions/{session_id}/stream", content=b'{"message": "hi"',
                                headers={**user.headers, "Content-Type": "application/json"})
    assert_error(response, 422, "invalid_json")


async def test_unknown_and_foreign_sessions_answer_the_same_404(http, user, settings, stack):
    mine = await new_session(http, user)
    stranger = make_user(settings)
    before = await count_messages(stack.database_url)

    answers = []
    for session_id in (mine, "00000000-0000-4000-8000-000000000000", "not-a-uuid"):
        for method, path, body in [("GET", "", None), ("POST", "/stream", {"message": "hi"}),
                                   ("GET", "/stream", None), ("DELETE", "", None)]:
            response = await http.request(method, f"/api/chat/sessions/{session_id}{path}", json=body,
                                          headers=stranger.headers)
            answers.append((response.status_code, response.json()))
    assert {(status, str(body)) for status, body in answers} == {
        (404, str({"error": {"code": "not_found", "message": "No such session."}}))}
    assert await count_messages(stack.database_url) == before
    assert (await http.get(f"/api/chat/sessions/{mine}", headers=user.headers)).status_code == 200


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ.wrong-signature"},
], ids=["missing", "garbage", "basic", "bad-signature"])
async def test_missing_or_bad_token_is_401(http, stack, headers):
    before = await count_messages(stack.database_url)
    for method, path, body in [("POST", "/api/chat/sessions", {}), ("GET", "/api/chat/sessions", None)]:
        response = await http.request(method, path, json=body, headers=headers)
        assert_error(response, 401, "unauthorized")
    assert await count_messages(stack.database_url) == before


async def test_expired_token_is_401(http, settings):
    from api.auth import issue_token

    token = issue_token(settings.jwt_secret, "someone", ttl_seconds=-10)
    response = await http.get("/api/chat/sessions", headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 401, "unauthorized")
    assert "expired" in response.json()["error"]["message"]


async def test_issuer_and_audience_are_checked_when_set(http, settings):
    import httpx
    import jwt

    from api.auth import ALGORITHM, issue_token
    from api.main import create_app
    from local.stack.process import free_port
    from tests.support.extra_tools import TEST_TOOLS
    from tests.support.servers import serve, shutdown

    strict = settings.model_copy(update={"jwt_issuer": "https://auth.example", "jwt_audience": "copilot-api"})
    port = free_port()
    server, task = await serve(create_app(strict, TEST_TOOLS), port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            async def answer(**claims) -> httpx.Response:
                token = issue_token(settings.jwt_secret, "issued-user", **claims)
                return await client.get("/api/chat/sessions", headers={"Authorization": f"Bearer {token}"})

            for claims in ({}, {"issuer": "https://auth.example"}, {"audience": "copilot-api"},
                           {"issuer": "https://elsewhere.example", "audience": "copilot-api"},
                           {"issuer": "https://auth.example", "audience": "another-api"}):
                assert_error(await answer(**claims), 401, "unauthorized")
            assert (await answer(issuer="https://auth.example", audience="copilot-api")).status_code == 200
            # The test users are issued for the settings they are made for.
            user = make_user(strict)
            assert (await client.get("/api/chat/sessions", headers=user.headers)).status_code == 200
            claims = jwt.decode(user.token, settings.jwt_secret, algorithms=[ALGORITHM], audience="copilot-api")
            assert claims["iss"] == "https://auth.example" and claims["aud"] == "copilot-api"
    finally:
        await shutdown(server, task)
    # Unset, neither is asked for, and one that a token carries anyway is not held against it.
    plain = jwt.decode(issue_token(settings.jwt_secret, "u"), settings.jwt_secret, algorithms=[ALGORITHM])
    assert "iss" not in plain and "aud" not in plain
    carried = issue_token(settings.jwt_secret, "u", issuer="https://auth.example", audience="copilot-api")
    assert (await http.get("/api/chat/sessions", headers={"Authorization": f"Bearer {carried}"})).status_code == 200


async def test_a_huge_offset_is_a_422_not_a_500(http, user):
    for path in ("/api/chat/sessions", "/api/workspace/files"):
        response = await http.get(path, params={"offset": 10 ** 20}, headers=user.headers)
        assert response.status_code == 422, response.text
        assert "offset" in response.text


async def test_a_body_past_the_limit_is_refused_before_it_is_read(http, user, settings):
    huge = b'{"message": "' + b"x" * (settings.max_request_bytes + 10) + b'"}'
    for headers in ({}, user.headers):  # before authentication too
        response = await http.post("/api/chat/sessions", content=huge,
                                   headers={**headers, "Content-Type": "application/json"})
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "request_too_large"

    async def chunks():  # no Content-Length: cut off while it streams in
        for _ in range(settings.max_request_bytes // 65536 + 2):
            yield b"x" * 65536
    response = await http.post("/api/chat/sessions", content=chunks(), headers=user.headers)
    assert response.status_code == 413, response.text
    webhook = await http.post("/api/credits/stripe_webhook", content=b"x" * 300_000)
    assert webhook.status_code == 413


@pytest.mark.parametrize("metadata, words", [
    ({"blob": "x" * 20_000}, "larger than"),
    ({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}, "deeper than"),
    ({"tool_filter": {"allow": 5}}, "tool_filter"),
])
async def test_metadata_is_bounded_and_keeps_to_itself(http, user, stack, metadata, words):
    before = await count_messages(stack.database_url)
    response = await http.post("/api/chat/sessions", json={"metadata": metadata}, headers=user.headers)
    assert response.status_code == 422 and words in response.text, response.text
    assert await count_messages(stack.database_url) == before
