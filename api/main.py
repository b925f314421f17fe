"""The FastAPI application: `uvicorn api.main:app`."""

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Optional

from fastapi import FastAPI

from agent_graphs.store import open_graph_store
from api.body_limit import BodyLimit
from api.errors import install_error_handlers
from api.openapi import install_openapi
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
from database import session_maker
from settings import Settings, get_settings
from stream_relay.connection import redis_client
from tools.registry import DEFAULT_TOOLS, ToolCatalog
from workflows.turn_client import connect_temporal
from workspace.storage import DiskStorage


def create_app(settings: Optional[Settings] = None, tools: ToolCatalog = DEFAULT_TOOLS) -> FastAPI:
    """The app. `tools` is the catalogue the workers serve: a turn's allowed tools are resolved
    from it before the turn starts."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        settings.refuse_unsafe()
        app.state.settings = settings
        app.state.tool_names = tuple(tools)
        app.state.sessions = session_maker(settings.database_url)
        app.state.redis = redis_client(settings.redis_url)
        app.state.temporal = await connect_temporal(settings)
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
    )
    install_error_handlers(app)
    install_openapi(app, settings)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
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


app = create_app()
