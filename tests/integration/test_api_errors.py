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
