"""The published OpenAPI document: what FastAPI derives from the routes, completed with what no
single route declares.

The answers that cross-cutting machinery gives are documented here, on every operation that can
get them, so a new route is documented the moment it exists: 401 from the bearer check, 422 from
validation (in the API's own error shape, not FastAPI's default), 400 and 413 for a body that
cannot be read or is too large (`api/body_limit.py`), 503 when PostgreSQL or Temporal does not
answer. So are the limits that come from settings (a message's length, the front end's origin for
redirects), and the links from a created session to the operations on it. Route-specific answers
(404, 409, 429, ...) stay in each route's `responses=`.
"""

from copy import deepcopy
from typing import Any, Callable
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.routing import APIRoute

from models.api import ErrorResponse, ValidationErrorResponse
from settings import Settings
from stream_relay.reader import ENTRY_ID_PATTERN

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
VALIDATION_REF = {"$ref": "#/components/schemas/ValidationErrorResponse"}
SESSIONS_PATH = "/api/chat/sessions"
FILES_PATH = "/api/workspace/files"
# `json_schema_extra` of a stream's `from` / `Last-Event-ID`: an event id to resume after, or empty
# for none (the routes check it: 422 invalid_event_id).
EVENT_ID_DOC = {"pattern": f"^(?:{ENTRY_ID_PATTERN.strip('^$')})?$"}
GRAPHS_PATH = "/api/graphs"


def operation_id(route: APIRoute) -> str:
    """A route's operation id: its function's name in camelCase (`create_session` -> `createSession`),
    short and stable as long as the function keeps its name. FastAPI's default appends the path
    and method (`create_session_api_chat_sessions_post`)."""
    head, *rest = route.name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _answer(description: str, ref: dict[str, str]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref}}}


CROSS_CUTTING = {
    "400": _answer("The body could not be read as JSON text (not UTF-8).", ERROR_REF),
    "401": _answer("No valid bearer token (`unauthorized`).", ERROR_REF),
    "413": _answer("The body is larger than the server's limit (`request_too_large`).", ERROR_REF),
    "422": _answer("The request is refused by the schema or by the route's own rules.", VALIDATION_REF),
    "503": _answer("PostgreSQL or Temporal did not answer (`database_unavailable`, `temporal_unavailable`); "
                   "see `Retry-After`.", ERROR_REF),
}


def _anycase(text: str) -> str:
    """`text` as a regex matching it in any letter case, escaped for every regex dialect."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else ("\\" + c if c in r".^$*+?()[]{}|\/" else c)
                   for c in text)


def redirect_pattern(origin: str) -> str:
    """What `billing.redirects.on_origin` accepts, as a regex: empty, or a URL with the origin's
    scheme and host (and port), in any case."""
    allowed = urlsplit(origin)
    return rf"^$|^{_anycase(allowed.scheme)}://{_anycase(allowed.netloc)}(?:[/?#][\s\S]*)?$"


def _add_components(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorResponse, ValidationErrorResponse):
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(model_schema.pop("$defs", {}))
        components[model.__name__] = model_schema
    # FastAPI's default 422 body, which the API never answers (api/errors.py answers every 422).
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)


def _not_nullable(parameter: dict[str, Any]) -> None:
    """A query, header or path parameter is text or absent, never JSON null: FastAPI's
    `anyOf: [X, null]` for an optional one becomes X (a client reading the spec would otherwise
    send the word "null")."""
    schema = parameter.get("schema", {})
    variants = schema.get("anyOf", [])
    kept = [v for v in variants if v.get("type") != "null"]
    if len(variants) == 2 and len(kept) == 1:
        del schema["anyOf"]
        parameter["schema"] = {**kept[0], **schema}


def _complete_operation(path: str, operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        _not_nullable(parameter)
    responses = operation.setdefault("responses", {})
    for response in responses.values():
        content = response.get("content", {})
        # A stream answers text/event-stream only: not the empty JSON FastAPI adds for a route
        # that can also answer JSON (a 202, an error).
        if "text/event-stream" in content and content.get("application/json", {}).get("schema") == {}:
            del content["application/json"]
    wanted = []
    if operation.get("security"):
        wanted.append("401")
    if "422" in responses:  # FastAPI's, on a route with fields to validate, or the route's own
        wanted.append("422")
    if operation.get("requestBody"):
        wanted += ["400", "413"]
    if path != "/health":  # the health check answers its own 503 (HealthResponse)
        wanted.append("503")
    for status in wanted:
        if status == "422":  # every 422 has the validation shape, whoever raises it
            described = responses.get("422", {}).get("description", CROSS_CUTTING["422"]["description"])
            responses["422"] = {**deepcopy(CROSS_CUTTING["422"]), "description": described}
        else:
            responses.setdefault(status, deepcopy(CROSS_CUTTING[status]))


def _request_property(schema: dict[str, Any], model: str, field: str) -> dict[str, Any]:
    return schema["components"]["schemas"][model]["properties"][field]


def _settings_limits(schema: dict[str, Any], settings: Settings) -> None:
    for model in ("SendMessageRequest", "RunTurnRequest", "BotChatRequest"):  # every send checks max_message_chars
        if model in schema["components"]["schemas"]:
            _request_property(schema, model, "message")["maxLength"] = settings.max_message_chars
    for field in ("success_url", "cancel_url"):
        _request_property(schema, "SubscriptionTierRequest", field)["pattern"] = redirect_pattern(
            settings.frontend_origin)
    origin = settings.frontend_origin.rstrip("/")
    schema["components"]["schemas"]["SubscriptionTierRequest"]["examples"] = [
        {"tier": "FREE"}, {"tier": "PRO", "success_url": f"{origin}/billing/done", "cancel_url": f"{origin}/billing"}]


def _session_links(schema: dict[str, Any]) -> None:
    """The id a created session answers is the `session_id` of every operation on a session."""
    links = {}
    for path, operations in schema["paths"].items():
        if not path.startswith(SESSIONS_PATH + "/{session_id}"):
            continue
        for method, operation in operations.items():
            name = f"{method}{path.removeprefix(SESSIONS_PATH + '/{session_id}').replace('/', '_')}".rstrip("_")
            links[name] = {"operationId": operation["operationId"],
                           "parameters": {"session_id": "$response.body#/id"}}
    schema["paths"][SESSIONS_PATH]["post"]["responses"]["201"]["links"] = links


def _graph_links(schema: dict[str, Any]) -> None:
    """A created graph's id (and version) is what reading and updating it take."""
    operations = schema["paths"][GRAPHS_PATH + "/{graph_id}"]
    schema["paths"][GRAPHS_PATH]["post"]["responses"]["201"]["links"] = {
        "get": {"operationId": operations["get"]["operationId"], "parameters": {"graph_id": "$response.body#/id"}},
        "put": {"operationId": operations["put"]["operationId"], "parameters": {"graph_id": "$response.body#/id"}},
    }


def _file_links(schema: dict[str, Any]) -> None:
    """A listed file's id is the `file_id` of its download."""
    download = schema["paths"][FILES_PATH + "/{file_id}/content"]["get"]
    schema["paths"][FILES_PATH]["get"]["responses"]["200"]["links"] = {"get_content": {
        "operationId": download["operationId"], "parameters": {"file_id": "$response.body#/0/id"}}}


def install_openapi(app: FastAPI, settings: Settings) -> None:
    derive: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = derive()  # FastAPI's document, cached on the app: completed once, in place
            _add_components(schema)
            for path, operations in schema["paths"].items():
                for operation in operations.values():
                    _complete_operation(path, operation)
            _settings_limits(schema, settings)
            _session_links(schema)
            _file_links(schema)
            _graph_links(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
