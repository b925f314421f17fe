"""The builder's chat on the offline model, with no model key: a person can try it from the README."""

import asyncio
import uuid

import httpx

from api.main import create_app
from local.model.server import create_app as create_offline_app
from local.stack.process import free_port
from tests.integration.test_offline_model import fast_pacing
from tests.support.helpers import db_rows, new_session, send
from tests.support.servers import serve, shutdown
from tests.support.sse_client import parts
from worker import build_worker


def outputs(events) -> list[dict]:
    return [p["output"] for p in parts(events) if p["type"] == "tool-output-available"]


async def test_the_offline_model_builds_an_agent_and_edits_it_in_the_builder(settings, temporal_client, stack, user):
    model_port, api_port = free_port(), free_port()
    offline = settings.model_copy(update={
        "temporal_task_queue": f"offline-builder-{uuid.uuid4().hex[:8]}", "model_base_url": "",
        "offline_model_url": f"http://127.0.0.1:{model_port}/v1"})
    model_server, model_task = await serve(create_offline_app(fast_pacing()), model_port)
    worker = build_worker(temporal_client, offline)
    worker_task = asyncio.create_task(worker.run())
    api_server, api_task = await serve(create_app(offline), api_port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=30) as http:
            # An ordinary chat: the guide first, then the agent.
            guide, created = outputs(await send(http, user, await new_session(http, user),
                                                "create an agent called Mailer"))
            assert guide.startswith("# Building agent graphs") and created["graph_version"] == 1
            graph_id = created["agent_id"]
            # The builder's chat for it: the node goes into the graph open there.
            session = await http.post("/api/chat/sessions", json={"builder_graph_id": graph_id}, headers=user.headers)
            [edited] = outputs(await send(http, user, session.json()["id"], "add a node send-email"))
            assert edited["agent_id"] == graph_id and edited["graph_version"] == 2
        [row] = await db_rows(stack.database_url, "SELECT version, nodes FROM agent_graphs WHERE id = :g", g=graph_id)
        assert row["version"] == 2 and row["nodes"][0]["block_id"] == "send-email"
    finally:
        await shutdown(api_server, api_task)
        await worker.shutdown()
        await shutdown(model_server, model_task)
        await asyncio.gather(worker_task, return_exceptions=True)
