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
