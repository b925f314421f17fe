"""The FastAPI application: `uvicorn api.main:app`."""

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Optional

from fastapi import FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from agent_graphs.store import open_graph_store
from api.body_limit import BodyLimit
from api.docs import install_docs
from api.errors import install_error_handlers
from api.openapi import install_openapi, operation_id
from api.playground import install_playground
from api.routers import (
    admin,
    admin_actions,
    admin_diagnostics,
    graphs,
    health,
    platform_bot,
    platform_linking,
    public,
    service_turns,
    sessions,
    sharing,
    stripe_webhook,
    subscription,
    usage,
    workspace,
)
from api.telemetry import RequestTelemetry
from database import session_maker
from observability.logs import configure_logging
from observability.tracing import Tracing, tracing_from_settings
from settings import Settings, get_settings
from stream_relay.connection import redis_client
from tools.registry import DEFAULT_TOOLS, ToolCatalog
from workflows.turn_client import connect_temporal
from workspace.storage import DiskStorage

# Headers a browser front end sends (the AI SDK's resume, tracing from Sentry or OpenTelemetry)
# and those it may read from our answers.
CORS_HEADERS = ["Authorization", "Content-Type", "Last-Event-ID", "Idempotency-Key", "X-Request-ID", "traceparent",
                "tracestate", "baggage", "sentry-trace"]
CORS_EXPOSED = ["x-vercel-ai-ui-message-stream", "Retry-After", "X-Request-ID"]


def api_tracing(settings: Settings) -> Tracing:
    return tracing_from_settings(settings.otel_exporter_otlp_endpoint, settings.otel_service_name or "copilot-api")


def create_app(settings: Optional[Settings] = None, tools: ToolCatalog = DEFAULT_TOOLS, tracing: Optional[Tracing] = None,
               *, configure_logs: bool = False) -> FastAPI:
    """The app. `tools` is the catalogue the workers serve: a turn's allowed tools are resolved
    from it before the turn starts. `tracing`: the settings' (OTLP when configured, else off)
    unless given. `configure_logs`: set the process's logging up as it starts (the served app)."""
    settings = settings or get_settings()
    tracing = tracing or api_tracing(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if configure_logs:
            configure_logging(settings.log_format, settings.log_level, "api")
        settings.refuse_unsafe()
        app.state.settings = settings
        app.state.tool_names = tuple(tools)
        app.state.sessions = session_maker(settings.database_url)
        app.state.redis = redis_client(settings.redis_url)
        app.state.temporal = await connect_temporal(settings, tracing)
        app.state.storage = DiskStorage(Path(settings.workspace_dir))
        app.state.graphs = open_graph_store(settings, app.state.sessions)
        yield
        await app.state.redis.aclose()

    app = FastAPI(
        title="Durable Copilot API",
        version="0.1.0",
        description="Chat sessions whose every turn is a durable Temporal workflow, streamed as a "
                    "Vercel AI SDK UI message stream. Authenticate with `Authorization: Bearer <JWT>`.",
        lifespan=lifespan,
        # Short, stable operation ids from the route functions' names (`createSession`), for every
        # route as it is added; tests/unit/test_openapi.py fails on one that is not short or unique.
        generate_unique_id_function=operation_id,
        docs_url=None, redoc_url=None,  # served with local assets (api/docs.py)
    )
    install_error_handlers(app)
    install_openapi(app, settings)
    install_docs(app)
    if settings.playground_enabled:
        install_playground(app)
    if settings.metrics_enabled:
        install_metrics(app)
    # The last added runs first: telemetry sees every answer, CORS answers preflights before the body limit.
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(CORSMiddleware, allow_origins=settings.allowed_origins, allow_methods=["*"],
                       allow_headers=CORS_HEADERS, expose_headers=CORS_EXPOSED, allow_credentials=False, max_age=600)
    app.add_middleware(RequestTelemetry, tracing=tracing, metrics_enabled=settings.metrics_enabled)
    app.include_router(health.router)
    app.include_router(sessions.router)
    app.include_router(graphs.router)
    app.include_router(usage.router)
    app.include_router(workspace.router)
    app.include_router(subscription.router)
    app.include_router(stripe_webhook.router)
    app.include_router(admin.router)
    app.include_router(admin_diagnostics.router)
    app.include_router(admin_actions.router)
    app.include_router(sharing.router)
    app.include_router(public.router)
    app.include_router(platform_linking.router)
    app.include_router(platform_bot.router)
    app.include_router(service_turns.router)
    return app


def install_metrics(app: FastAPI) -> None:
    """Prometheus's scrape of this process: our metrics and the Temporal SDK's client metrics."""

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


app = create_app(configure_logs=True)
