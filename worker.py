"""Runs the Temporal worker: the turn and subscription workflows and every activity they call.

    python worker.py
"""

import asyncio
import logging
from pathlib import Path
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.accounts import AccountActivities
from activities.llm import ModelActivities
from activities.stop import StopActivities
from activities.sub_sessions import SubSessionActivities
from activities.store import StoreActivities
from activities.stripe import StripeActivities
from activities.stream import StreamActivities
from activities.tools import ToolActivities
from activities.usage import UsageActivities
from billing.spend import SpendWindows
from conversation.context import ContextCache
from database import session_maker
from tools.base import ToolServices
from workspace.storage import DiskStorage
from settings import Settings, get_settings
from stream_relay.connection import redis_client
from workflows.copilot_turn import CopilotTurnWorkflow
from workflows.subscription import SubscriptionWorkflow
from workflows.turn_client import connect_temporal

WORKFLOWS = [CopilotTurnWorkflow, SubscriptionWorkflow]


def build_worker(client: Client, settings: Settings) -> Worker:
    redis = redis_client(settings.redis_url)
    sessions = session_maker(settings.database_url)
    model = ModelActivities(settings, redis, ContextCache(sessions))
    store = StoreActivities(sessions)
    stop = StopActivities(redis, sessions, settings.stream_retention_seconds)
    stream = StreamActivities(redis, settings.stream_retention_seconds)
    tool_services = ToolServices(settings, sessions, DiskStorage(Path(settings.workspace_dir)), client)
    tools = ToolActivities(redis, tool_services)
    sub_sessions = SubSessionActivities(settings, sessions, client)
    usage = UsageActivities(sessions, SpendWindows(redis, settings))
    accounts = AccountActivities(sessions)
    stripe = StripeActivities(settings)
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=WORKFLOWS,
        # The sandbox still guards workflow code against non-determinism (time, random, I/O);
        # passing imports through skips re-importing modules for every new workflow run, which
        # is most of a turn's first workflow task.
        workflow_runner=SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_all_modules()),
        activities=[
            model.stream_model_round,
            store.begin_turn,
            store.record_messages,
            stream.open_stream,
            stream.publish_parts,
            tools.run_tool,
            stop.record_stop,
            sub_sessions.prepare_sub_session,
            sub_sessions.queue_in_session,
            usage.record_usage,
            accounts.load_account,
            accounts.save_stripe_customer,
            accounts.apply_stripe_tier,
            stripe.ensure_stripe_customer,
            stripe.fetch_stripe_billing,
            stripe.create_checkout_session,
            stripe.release_subscription_schedule,
            stripe.set_cancel_at_period_end,
            stripe.change_subscription_price,
            stripe.schedule_downgrade,
        ],
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        # Heartbeats reach the server at least every second, so a Stop lands on a streaming
        # round or a tool within about a second (the SDK otherwise throttles to 80% of the timeout).
        max_heartbeat_throttle_interval=timedelta(seconds=1),
        default_heartbeat_throttle_interval=timedelta(seconds=1),
        # A worker that dies hands its sticky workflows back quickly.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
    )


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    client = await connect_temporal(settings)
    worker = build_worker(client, settings)
    logging.getLogger("worker").info("worker polling task queue %r", settings.temporal_task_queue)
    await worker.run()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
