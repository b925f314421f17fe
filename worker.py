"""Runs the Temporal worker: the turn and subscription workflows and every activity they call.

    python worker.py
"""

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Optional

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.accounts import AccountActivities
from activities.llm import ModelActivities
from activities.stop import StopActivities
from activities.store import StoreActivities
from activities.stream import StreamActivities
from activities.stripe import StripeActivities
from activities.sub_sessions import SubSessionActivities
from activities.tools import ToolActivities
from activities.usage import UsageActivities
from agent_graphs.store import open_graph_store
from billing.spend import SpendWindows
from conversation.context import ContextCache
from database import session_maker
from observability.logs import configure_logging
from observability.metrics import serve_metrics
from observability.temporal import LogContextInterceptor
from observability.tracing import Tracing, tracing_from_settings
from settings import Settings, get_settings
from stream_relay.connection import redis_client
from tools.base import ToolServices
from tools.registry import DEFAULT_TOOLS, ToolCatalog
from workflows.copilot_turn import CopilotTurnWorkflow
from workflows.subscription import SubscriptionWorkflow
from workflows.turn_client import TemporalSubSessions, connect_temporal
from workspace.storage import DiskStorage

log = logging.getLogger("worker")
WORKFLOWS = [CopilotTurnWorkflow, SubscriptionWorkflow]
# Every class whose `@activity.defn` methods the worker registers: together they implement each
# stub of `activities.interfaces` once (tests/unit/test_activity_interfaces.py checks it).
ACTIVITY_CLASSES = [ModelActivities, StoreActivities, StopActivities, StreamActivities, ToolActivities,
                    SubSessionActivities, UsageActivities, AccountActivities, StripeActivities]
# The SDK's activity worker writes every activity's whole result (model text, tool output) at DEBUG:
# held at INFO, a root logger turned to DEBUG still writes ids, never content
# (tests/e2e/test_logs_hold_no_content.py runs at DEBUG).
PAYLOAD_LOGGERS = ("temporalio.worker._activity",)


def hold_payload_loggers_at_info() -> None:
    for name in PAYLOAD_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.level, logging.INFO))


def activity_methods(implementation: object) -> list:
    """The activity methods of an object, bound to it."""
    return [getattr(implementation, name) for name in dir(type(implementation))
            if hasattr(getattr(type(implementation), name), "__temporal_activity_definition")]


def offered_tools(settings: Settings, tools: ToolCatalog) -> ToolCatalog:
    """The tools the model may be offered on this worker: those that can run here. A call to one
    left out still reaches the tool, which answers why it cannot run."""
    offered = {}
    for name, tool in tools.items():
        reason = tool.unavailable_reason(settings) if tool.unavailable_reason else None
        if reason:
            log.warning("tool %s is not offered on this worker: %s", name, reason)
        else:
            offered[name] = tool
    return MappingProxyType(offered)


def worker_tracing(settings: Settings) -> Tracing:
    return tracing_from_settings(settings.otel_exporter_otlp_endpoint, settings.otel_service_name or "copilot-worker")


def interceptors_to_add(client: Client, tracing: Tracing) -> list:
    """The worker's interceptors that its client does not already bring (a client's interceptors
    that are also worker interceptors serve its workers too)."""
    present = {type(interceptor) for interceptor in client.config().get("interceptors", [])}
    wanted = [LogContextInterceptor(), *tracing.temporal_interceptors()]
    return [interceptor for interceptor in wanted if type(interceptor) not in present]


def build_worker(client: Client, settings: Settings, tools: ToolCatalog = DEFAULT_TOOLS,
                 tracing: Optional[Tracing] = None) -> Worker:
    """The worker and what it registers. `tools` is the catalogue its tool and model activities
    serve; the API that starts turns for this worker must be given the same one. `tracing`: the
    settings' (OTLP when configured, else off) unless given."""
    hold_payload_loggers_at_info()
    tracing = tracing or worker_tracing(settings)
    redis = redis_client(settings.redis_url)
    sessions = session_maker(settings.database_url)
    graphs = open_graph_store(settings, sessions)
    model = ModelActivities(settings, redis, ContextCache(sessions), offered_tools(settings, tools), graphs,
                             tracing)
    store = StoreActivities(sessions)
    stop = StopActivities(redis, sessions, settings.stream_retention_seconds)
    stream = StreamActivities(redis, settings.stream_retention_seconds)
    tool_services = ToolServices(settings, sessions, DiskStorage(Path(settings.workspace_dir)),
                                 TemporalSubSessions(client, sessions), graphs)
    tool_runs = ToolActivities(redis, tool_services, tools, tracing)
    sub_sessions = SubSessionActivities(settings, sessions, client, tools)
    usage = UsageActivities(sessions, SpendWindows(redis, settings))
    accounts = AccountActivities(sessions)
    stripe = StripeActivities(settings)
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=WORKFLOWS,
        interceptors=interceptors_to_add(client, tracing),
        # The sandbox still guards workflow code against non-determinism (time, random, I/O);
        # passing imports through skips re-importing modules for every new workflow run, which
        # is most of a turn's first workflow task.
        workflow_runner=SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_all_modules()),
        activities=[method for implementation in (model, store, stop, stream, tool_runs, sub_sessions, usage,
                                                  accounts, stripe)
                    for method in activity_methods(implementation)],
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        # Heartbeats reach the server at least every second, so a Stop lands on a streaming
        # round or a tool within about a second (the SDK otherwise throttles to 80% of the timeout).
        max_heartbeat_throttle_interval=timedelta(seconds=1),
        default_heartbeat_throttle_interval=timedelta(seconds=1),
        # A worker that dies hands its sticky workflows back quickly.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
    )


async def main(tools: ToolCatalog = DEFAULT_TOOLS) -> None:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level, "worker")
    settings.refuse_unsafe()
    tracing = worker_tracing(settings)
    client = await connect_temporal(settings, tracing)
    worker = build_worker(client, settings, tools, tracing)
    if settings.metrics_enabled:
        serve_metrics(settings.worker_metrics_host, settings.worker_metrics_port)
    log.info("worker polling task queue %r", settings.temporal_task_queue)
    await worker.run()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
