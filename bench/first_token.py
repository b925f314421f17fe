"""Time from `POST .../stream` to the first `text-delta`, through the whole system, against the
same offline model streamed directly (the baseline), side by side.

    make bench            # or: .venv/bin/python -m bench.first_token --runs 20

Runs its own PostgreSQL, Redis, Temporal dev server, offline model, worker and API on free
loopback ports in a temporary folder. Reports medians and the ratio system / baseline.
"""

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import uvicorn
from openai import AsyncOpenAI

from api.auth import issue_token
from api.main import create_app
from database import upgrade_schema
from devstack.postgres import EmbeddedPostgres
from devstack.process import free_port
from devstack.redis import EmbeddedRedis
from devstack.temporal import TemporalDevServer
from offline_model.server import Pacing, create_app as create_offline_app
from settings import Settings
from worker import build_worker
from workflows.turn_client import connect_temporal


async def serve(app, port: int):
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    return server, task


async def baseline_first_token(model_url: str, prompt: str) -> float:
    client = AsyncOpenAI(base_url=model_url, api_key="offline", max_retries=0)
    started = time.perf_counter()
    stream = await client.chat.completions.create(model="bench", stream=True,
                                                  messages=[{"role": "user", "content": prompt}])
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            elapsed = time.perf_counter() - started
            await stream.close()
            return elapsed
    raise RuntimeError("no text")


async def system_first_token(http: httpx.AsyncClient, headers: dict, prompt: str) -> float:
    session_id = (await http.post("/api/chat/sessions", json={}, headers=headers)).json()["id"]
    started, elapsed = time.perf_counter(), None
    async with http.stream("POST", f"/api/chat/sessions/{session_id}/stream", json={"message": prompt},
                           headers=headers) as response:
        # Read to the end, so the turn finishes before the next run starts.
        async for line in response.aiter_lines():
            if elapsed is None and '"type":"text-delta"' in line:
                elapsed = time.perf_counter() - started
    if elapsed is None:
        raise RuntimeError("the stream had no text")
    return elapsed


async def run(runs: int, first_token_delay_ms: float) -> None:
    root = Path(tempfile.mkdtemp(prefix="copilot-bench-"))
    postgres = EmbeddedPostgres(root / "pg", free_port(), durable=False).start(root / "pg.log")
    redis = EmbeddedRedis(root / "redis", free_port(), durable=False).start(root / "redis.log")
    temporal = TemporalDevServer(free_port(), None, None).start(root / "temporal.log")
    servers = []
    try:
        await asyncio.to_thread(upgrade_schema, postgres.url)
        pacing = Pacing()
        pacing.first_token_delay, pacing.tokens_per_second, pacing.answer_words = first_token_delay_ms / 1000, 200, 20
        model_port, api_port = free_port(), free_port()
        servers.append(await serve(create_offline_app(pacing), model_port))
        model_url = f"http://127.0.0.1:{model_port}/v1"
        # A non-Anthropic route: no reasoning, so the first content is text in both paths.
        settings = Settings(_env_file=None, database_url=postgres.url, redis_url=redis.url,
                            temporal_address=temporal.address, offline_model_url=model_url, fast_model="bench/model",
                            temporal_task_queue=f"bench-{uuid.uuid4().hex[:6]}")
        client = await connect_temporal(settings)
        worker = build_worker(client, settings)
        worker_task = asyncio.create_task(worker.run())
        servers.append(await serve(create_app(settings), api_port))
        headers = {"Authorization": f"Bearer {issue_token(settings.jwt_secret, 'bench-user')}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=60) as http:
            await system_first_token(http, headers, "warm up")
            await baseline_first_token(model_url, "warm up")
            system, baseline = [], []
            for i in range(runs):
                baseline.append(await baseline_first_token(model_url, f"question {i}"))
                system.append(await system_first_token(http, headers, f"question {i}"))
        await worker.shutdown()
        await asyncio.gather(worker_task, return_exceptions=True)
        b, s = statistics.median(baseline), statistics.median(system)
        print(f"first text-delta, median of {runs}, offline model first-token delay {first_token_delay_ms:.0f} ms")
        print(f"  baseline (openai client -> offline model) {b * 1000:8.1f} ms")
        print(f"  system   (POST /stream -> SSE text-delta) {s * 1000:8.1f} ms")
        print(f"  ratio system/baseline                     {s / b:8.2f}x   overhead {1000 * (s - b):.1f} ms")
    finally:
        for server, task in servers:
            server.should_exit = True
            await asyncio.gather(task, return_exceptions=True)
        temporal.stop()
        redis.stop()
        postgres.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--first-token-delay-ms", type=float,
                        default=float(os.environ.get("OFFLINE_MODEL_FIRST_TOKEN_DELAY_MS", "400")))
    args = parser.parse_args()
    asyncio.run(run(args.runs, args.first_token_delay_ms))
    asyncio.run(run(args.runs, 0))


if __name__ == "__main__":
    main()
