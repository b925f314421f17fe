"""CORS for the configured front-end origin(s): a browser app there may call the API with the headers
a front end sends (the bearer token, the AI SDK's `Last-Event-ID`, Sentry's and OpenTelemetry's
trace headers) and read the stream's header; any other origin gets nothing."""

import pytest
from fastapi.testclient import TestClient

from api.main import create_app

ALLOWED = "https://app.example.com"
SENT_HEADERS = ["authorization", "content-type", "last-event-id", "idempotency-key", "sentry-trace", "baggage",
                "traceparent", "tracestate", "x-request-id"]


def app_without_servers(settings):
    """The app with no lifespan (no servers to reach): a route that needs none, like a 401, answers."""
    app = create_app(settings)
    app.state.settings = settings
    return TestClient(app)


@pytest.fixture(scope="module")
def client(settings):
    return app_without_servers(settings.model_copy(update={"cors_origins": [ALLOWED, "http://127.0.0.1:3000"]}))


def preflight(client, origin: str, method: str = "POST", headers: list[str] = SENT_HEADERS):
    return client.options("/api/chat/sessions/s-1/stream", headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": ", ".join(headers)})


def test_a_preflight_from_an_allowed_origin_passes_with_the_front_ends_headers(client):
    response = preflight(client, ALLOWED)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert set(SENT_HEADERS) <= allowed
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in response.headers  # bearer tokens, no cookies


def test_a_preflight_from_another_origin_fails(client):
    for origin in ("https://evil.example.com", "https://app.example.com.evil.test", "http://app.example.com"):
        response = preflight(client, origin)
        assert response.status_code == 400, origin
        assert "access-control-allow-origin" not in response.headers, origin


def test_answers_carry_the_cors_headers_a_front_end_reads(client):
    response = client.get("/api/chat/sessions", headers={"Origin": ALLOWED})
    assert response.status_code == 401  # no token: the error is readable by the page too
    assert response.headers["access-control-allow-origin"] == ALLOWED
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    assert {"x-vercel-ai-ui-message-stream", "retry-after", "x-request-id"} <= exposed
    other = client.get("/api/chat/sessions", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in other.headers


def test_without_cors_origins_the_front_ends_origin_is_allowed(settings):
    client = app_without_servers(settings.model_copy(update={"frontend_origin": "http://localhost:3000/"}))
    assert preflight(client, "http://localhost:3000").headers["access-control-allow-origin"] == "http://localhost:3000"
    assert preflight(client, ALLOWED).status_code == 400


def test_every_answer_names_its_request(client):
    mine = client.get("/api/chat/sessions", headers={"X-Request-ID": "req-123"})
    assert mine.headers["x-request-id"] == "req-123"
    fresh = client.get("/api/chat/sessions", headers={"X-Request-ID": "bad id with spaces"})
    assert len(fresh.headers["x-request-id"]) == 32
