"""Every error leaves the API as JSON: `{"error": {"code", "message", "details"?}}`."""

import logging
from typing import Any, Optional

import asyncpg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from temporalio.service import RPCError

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status_code: int, code: str, message: str, details: Optional[Any] = None,
                 headers: Optional[dict[str, str]] = None):
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def not_found(what: str = "session") -> ApiError:
    # A foreign id answers exactly like a missing one: same status, same body.
    return ApiError(404, "not_found", f"No such {what}.")


def _body(code: str, message: str, details: Optional[Any] = None) -> dict:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def _validation_details(exc: RequestValidationError) -> list[dict]:
    # Input values are left out: they may be large or private.
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]


def _allowed_methods(request: Request) -> str:
    """Every method the path takes: Starlette's 405 names only those of the first route that
    matched the path, and a path often has several (GET and DELETE on a session)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if getattr(route, "methods", None) and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(_body(exc.code, exc.message, exc.details), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        malformed = any(d["type"] == "json_invalid" for d in details)
        message = "The request body is not valid JSON." if malformed else "The request is invalid."
        return JSONResponse(_body("invalid_json" if malformed else "invalid_request", message, details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own 400 is a body it could not decode (not UTF-8): no JSON to validate at all.
        codes = {400: "invalid_body", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 413: "request_too_large"}
        code = codes.get(exc.status_code, "http_error")
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": _allowed_methods(request)}
        return JSONResponse(_body(code, str(exc.detail)), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RPCError)
    async def temporal_unavailable(_request: Request, exc: RPCError) -> JSONResponse:
        log.error("Temporal call failed: %s (%s)", exc.status.name if exc.status else "unknown", type(exc).__name__)
        return JSONResponse(_body("temporal_unavailable", "The workflow service did not answer; try again shortly."),
                            status_code=503, headers={"Retry-After": "2"})

    @app.exception_handler(RedisError)
    async def redis_unavailable(_request: Request, exc: RedisError) -> JSONResponse:
        log.error("Redis did not answer (%s)", type(exc).__name__)
        return JSONResponse(_body("redis_unavailable", "The stream store did not answer; try again shortly."),
                            status_code=503, headers={"Retry-After": "2"})

    async def database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        log.error("PostgreSQL did not answer (%s)", type(exc).__name__)  # never the statement's values
        return JSONResponse(_body("database_unavailable", "The database did not answer; try again shortly."),
                            status_code=503, headers={"Retry-After": "2"})

    # asyncpg raises the socket's own error when it cannot connect; SQLAlchemy wraps the rest.
    for unavailable in (ConnectionError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
                        sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError):
        app.add_exception_handler(unavailable, database_unavailable)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # Logged with its traceback for operators; the client learns nothing about the internals.
        log.exception("unhandled %s", type(exc).__name__)
        return JSONResponse(_body("internal_error", "Something went wrong on our side; please try again."),
                            status_code=500)
