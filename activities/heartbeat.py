import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator

from temporalio import activity


@asynccontextmanager
async def heartbeating(every_seconds: float = 1.0) -> AsyncIterator[None]:
    """Heartbeats on a timer while the body waits on something slow (a first token, a tool),
    so a cancellation or a dead worker is noticed within about a second."""

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every_seconds)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
