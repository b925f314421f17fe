"""The published API: every route is in the README's table, and every JSON answer has a schema."""

import re
from pathlib import Path

from pydantic import ValidationError

from api.main import create_app
from billing.redirects import on_origin
from models.api import SendMessageRequest

README = Path(__file__).resolve().parents[2] / "README.md"


def normalised(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_every_route_is_documented_in_the_readme(settings):
    schema = create_app(settings).openapi()
    served = {(method.upper(), normalised(path)) for path, operations in schema["paths"].items()
              for method in operations}
    documented = {(m, normalised(p)) for m, p in re.findall(r"^\| `(GET|POST|PUT|PATCH|DELETE) ([^`?]+)",
                                                             README.read_text(), flags=re.MULTILINE)}
    assert served == documented


def test_every_json_answer_has_a_schema(settings):
    schema = create_app(settings).openapi()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                content = response.get("content", {})
                if "application/json" in content and status.startswith("2") and not path.endswith("/stream"):
                    assert content["application/json"]["schema"], f"{method.upper()} {path} {status}"


def operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_cross_cutting_answers_are_documented_in_the_apis_own_error_shape(settings):
    schema = create_app(settings).openapi()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for name, operation in operations(schema):
        responses = operation["responses"]
        if operation.get("security"):
            assert "401" in responses, name
        if "requestBody" in operation:
            assert {"400", "413"} <= set(responses), name
        if "422" in responses:
            assert responses["422"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ValidationErrorResponse"}, name
        if name != "GET /health":
            assert "503" in responses, name
        for parameter in operation.get("parameters", []):  # text or absent, never null
            assert "anyOf" not in parameter["schema"], (name, parameter["name"])


def test_every_link_leads_to_an_operation_and_its_parameter(settings):
    schema = create_app(settings).openapi()
    by_id = {operation["operationId"]: operation for _, operation in operations(schema)}
    links = [link for _, operation in operations(schema) for response in operation["responses"].values()
             for link in response.get("links", {}).values()]
    assert len(links) >= 8
    for link in links:
        target = by_id[link["operationId"]]
        assert set(link["parameters"]) <= {p["name"] for p in target.get("parameters", [])}, link


def test_the_spec_states_the_servers_own_limits(settings):
    custom = settings.model_copy(update={"max_message_chars": 1234, "frontend_origin": "https://App.example.com:8443"})
    components = create_app(custom).openapi()["components"]["schemas"]
    for model in ("SendMessageRequest", "RunTurnRequest"):
        assert components[model]["properties"]["message"]["maxLength"] == 1234
    pattern = components["SubscriptionTierRequest"]["properties"]["success_url"]["pattern"]
    samples = ["", "https://app.example.com:8443", "HTTPS://APP.EXAMPLE.COM:8443/done?x=1#y",
               "https://app.example.com:8443?q", "https://app.example.com", "http://app.example.com:8443/",
               "https://app.example.com:8443.evil.test/", "https://user@app.example.com:8443/", "/relative",
               "javascript:alert(1)", "https://app.example.com:84430/"]
    for url in samples:
        assert bool(re.search(pattern, url)) == (url == "" or on_origin(url, custom.frontend_origin)), url


def test_a_blank_message_is_the_same_to_the_spec_and_the_server():
    pattern = SendMessageRequest.model_json_schema()["properties"]["message"]["pattern"]
    blanks = [chr(c) for c in range(0x110000) if chr(c).isspace()]
    for text in [*blanks, "".join(blanks), " x ", "\u200b", "\ufeff", "a\x00"]:
        try:
            SendMessageRequest(message=text)
            accepted = True
        except ValidationError:
            accepted = False
        assert bool(re.search(pattern, text)) == accepted, repr(text)


OPERATION_ID = re.compile(r"^[a-z][a-zA-Z0-9]{2,39}$")


def operation_id_problems(schema: dict) -> list[str]:
    """Every operation's id: camelCase, at most 40 characters, unique."""
    problems, seen = [], {}
    for name, operation in operations(schema):
        operation_id = operation.get("operationId", "")
        if not OPERATION_ID.fullmatch(operation_id):
            problems.append(f"{name}: operation id {operation_id!r} is not short camelCase (name the route function)")
        if operation_id in seen:
            problems.append(f"{name}: operation id {operation_id!r} is also {seen[operation_id]}'s (rename one function)")
        seen[operation_id] = name
    return problems


def test_every_operation_has_a_short_stable_unique_id(settings):
    schema = create_app(settings).openapi()
    assert operation_id_problems(schema) == []
    ids = {name: operation["operationId"] for name, operation in operations(schema)}
    assert ids["POST /api/chat/sessions"] == "createSession"
    assert ids["POST /api/chat/sessions/{session_id}/stream"] == "streamMessage"
    assert ids["GET /api/chat/sessions/{session_id}/stream"] == "followTurn"


def test_a_route_added_without_a_good_name_fails_the_check(settings):
    """What a route another branch adds gets: an id from its function's name, checked like the rest."""
    from fastapi import APIRouter

    app = create_app(settings)
    extra = APIRouter()

    @extra.get("/api/extra/one")
    async def get_usage() -> dict:  # the name of an existing route
        return {}

    @extra.get("/api/extra/two")
    async def get_every_single_thing_this_api_knows_about_a_user_at_once() -> dict:
        return {}

    app.include_router(extra)
    problems = operation_id_problems(app.openapi())
    assert any("'getUsage' is also" in p for p in problems), problems
    assert any("getEverySingleThing" in p and "not short" in p for p in problems), problems


def test_the_spec_declares_the_bearer_schemes_and_every_operation_uses_one(settings):
    schema = create_app(settings).openapi()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {"type": "http", "scheme": "bearer", "description": schemes["HTTPBearer"]["description"]}
    assert schemes["ServiceToken"]["scheme"] == "bearer"
    # The webhook is signed, not authorised; a share's link is its own secret.
    public = {"GET /health", "POST /api/credits/stripe_webhook", "GET /api/public/shared/{share_token}",
              "GET /api/public/shared/{share_token}/files/{file_id}/download"}
    for name, operation in operations(schema):
        if name in public:
            assert not operation.get("security"), name
        else:
            assert operation.get("security") in ([{"HTTPBearer": []}], [{"ServiceToken": []}]), name


def test_every_json_answer_is_a_named_model(settings):
    schema = create_app(settings).openapi()
    components = schema["components"]["schemas"]
    raw_content = {"GET /api/workspace/files/{file_id}/content"}  # a file's own bytes, whatever JSON it holds
    for name, operation in operations(schema):
        if name in raw_content:
            continue
        for status, response in operation["responses"].items():
            json_schema = response.get("content", {}).get("application/json", {}).get("schema")
            if json_schema is None:
                continue
            assert set(json_schema) == {"$ref"}, f"{name} {status}: an unnamed schema {json_schema}"
            assert json_schema["$ref"].removeprefix("#/components/schemas/") in components, (name, status)


def test_docs_pages_load_their_assets_from_this_server(settings):
    from fastapi.testclient import TestClient

    client = TestClient(create_app(settings))
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "https://" not in html and "http://" not in html, page
        for asset in re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', html):
            assert client.get(asset).status_code == 200, asset
    assert "persistAuthorization" in client.get("/docs").text
