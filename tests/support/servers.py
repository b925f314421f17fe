"""In-process servers for tests: an ASGI app served by uvicorn on a loopback port."""

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator

import httpx
import uvicorn

from api.main import create_app
from local.stack.process import free_port
from settings import Settings
from tests.support.extra_tools import TEST_TOOLS


async def serve(app, port: int) -> tuple[uvicorn.Server, asyncio.Task]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    return server, task


async def shutdown(server: uvicorn.Server, task: asyncio.Task) -> None:
    server.should_exit = True
    await asyncio.wait_for(task, 30)


@asynccontextmanager
async def api_with(settings: Settings, **changes) -> AsyncIterator[httpx.AsyncClient]:
    """The API on other settings, beside the shared one. Its turns need a worker on the settings'
    task queue: the test asks for the `worker` fixture (or one of its own)."""
    port = free_port()
    server, task = await serve(create_app(settings.model_copy(update=changes), TEST_TOOLS), port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        await shutdown(server, task)
