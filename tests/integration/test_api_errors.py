"""Failures the API did not foresee still answer JSON: 503 when Temporal does not answer, 500
with no internals otherwise."""

import httpx
from temporalio.service import RPCError, RPCStatusCode

from api.main import create_app


async def test_temporal_down_is_a_503_and_a_bug_is_a_json_500(settings):
    app = create_app(settings)

    @app.get("/_probe/temporal")
    async def temporal_down():
        raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")

    @app.get("/_probe/bug")
    async def bug():
        raise KeyError("secret-internal-detail")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        down = await client.get("/_probe/temporal")
        assert down.status_code == 503 and down.json()["error"]["code"] == "temporal_unavailable"
        assert down.headers["retry-after"] == "2"
        broken = await client.get("/_probe/bug")
        assert broken.status_code == 500 and broken.json()["error"]["code"] == "internal_error"
        assert "secret-internal-detail" not in broken.text


async def test_postgres_down_is_a_503_with_retry_after(settings, user):
    from local.stack.process import free_port
    from tests.support.servers import serve, shutdown

    unreachable = settings.model_copy(update={
        "database_url": f"postgresql+asyncpg://copilot@127.0.0.1:{free_port()}/copilot"})
    port = free_port()
    server, task = await serve(create_app(unreachable), port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            response = await client.get("/api/chat/sessions", headers=user.headers)
    finally:
        await shutdown(server, task)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "database_unavailable" and response.headers["retry-after"]


async def test_without_redis_a_turn_still_runs_and_is_saved_and_each_route_says_so(settings, scripted, stack, worker):
    from local.stack.process import free_port
    from tests.support.helpers import eventually, marker, new_session, session_rows
    from tests.support.scripted_model import text_reply
    from tests.support.servers import api_with
    from tests.support.sse_client import parts, read_events
    from tests.support.users import make_user

    tag = marker()
    scripted.script(tag, text_reply("Saved anyway."))
    user = make_user(settings)
    async with api_with(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0") as http:
        session_id = await new_session(http, user)
        async with http.stream("POST", f"/api/chat/sessions/{session_id}/stream", json={"message": f"hi {tag}"},
                               headers=user.headers) as response:
            assert response.status_code == 200
            events = await read_events(response)
        assert parts(events)[0] == {"type": "data-stream-error", "data": {"code": "stream_unavailable",
                                                                         "retryable": True}}
        assert parts(events)[-1]["type"] == "error"

        async def roles():
            return [r["role"] for r in await session_rows(stack.database_url, session_id)]
        assert await eventually(roles, lambda found: found == ["user", "assistant"])

        follow = await http.get(f"/api/chat/sessions/{session_id}/stream", headers=user.headers)
        assert follow.status_code == 503 and follow.json()["error"]["code"] == "redis_unavailable"
        assert follow.headers["retry-after"]
        keyed = await http.post(f"/api/chat/sessions/{session_id}/stream", json={"message": "again"},
                                headers={**user.headers, "Idempotency-Key": "k-1"})
        assert keyed.status_code == 503
        assert (await http.get("/api/chat/usage", headers=user.headers)).status_code == 200
        assert (await http.delete(f"/api/chat/sessions/{session_id}", headers=user.headers)).status_code == 204
