"""The subscription workflow on Temporal's time-skipping test server, so a month takes
milliseconds: with its real activities (Postgres, and the real `stripe` library against the
sandbox) when every webhook is lost, and with stand-in activities for continue-as-new."""

import uuid
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.worker import Worker

from activities.accounts import AccountActivities
from activities.stripe import StripeActivities
from database import session_maker
from models.subscription import Account, ChangeTierRequest, StripeBilling, StripeEventNotice, SubscriptionState
from tests.support.helpers import db_rows, eventually
from tests.support.stripe_keys import FRONTEND_ORIGIN
from workflows.subscription import SubscriptionWorkflow, subscription_workflow_id
from workflows.subscription_client import change_tier, subscription_view

DAY = timedelta(days=1)


@pytest.fixture
def env(time_skipping_env):
    return time_skipping_env


@pytest.fixture
def lost_webhooks(stripe_sandbox):
    sandbox = stripe_sandbox[0]
    sandbox.deliver_webhooks = False
    yield sandbox
    sandbox.deliver_webhooks = True


async def db_tier(settings, user_id: str) -> str:
    rows = await db_rows(settings.database_url, "SELECT tier FROM users WHERE id = :id", id=user_id)
    return rows[0]["tier"] if rows else "FREE"


async def test_lost_webhooks_are_made_good_by_the_workflows_timers(env, settings, lost_webhooks):
    sandbox = lost_webhooks
    settings = settings.model_copy(update={"temporal_task_queue": f"subscriptions-{uuid.uuid4().hex[:6]}"})
    accounts, stripe_calls = AccountActivities(session_maker(settings.database_url)), StripeActivities(settings)
    user_id = f"user-{uuid.uuid4().hex[:10]}"
    activities = [accounts.load_account, accounts.save_stripe_customer, accounts.apply_stripe_tier,
                  stripe_calls.ensure_stripe_customer, stripe_calls.fetch_stripe_billing,
                  stripe_calls.create_checkout_session, stripe_calls.release_subscription_schedule,
                  stripe_calls.set_cancel_at_period_end, stripe_calls.change_subscription_price,
                  stripe_calls.schedule_downgrade]
    async with Worker(env.client, task_queue=settings.temporal_task_queue, workflows=[SubscriptionWorkflow],
                      activities=activities):
        started = await change_tier(env.client, settings, user_id, ChangeTierRequest(
            tier="BUSINESS", success_url=f"{FRONTEND_ORIGIN}/ok"))
        sandbox.complete_checkout(started.url.rstrip("/").rsplit("/", 1)[-1])
        assert await db_tier(settings, user_id) == "FREE"  # the webhook is lost

        await env.sleep(timedelta(minutes=11))  # the Checkout follow-up looks at Stripe
        await eventually(lambda: db_tier(settings, user_id), lambda tier: tier == "BUSINESS")

        scheduled = await change_tier(env.client, settings, user_id, ChangeTierRequest(tier="PRO"))
        assert scheduled.tier == "BUSINESS" and scheduled.pending_tier == "PRO"

        sandbox.advance(31 * 24 * 3600)  # Stripe moves to the PRO phase; its webhook is lost too
        await env.sleep(31 * DAY)
        await eventually(lambda: db_tier(settings, user_id), lambda tier: tier == "PRO")
        view = await subscription_view(env.client, user_id)
        assert view.tier == "PRO" and view.pending_tier is None

        # The workflow is still there for the next change, a month later.
        description = await env.client.get_workflow_handle(subscription_workflow_id(user_id)).describe()
        assert description.status.name == "RUNNING"


@activity.defn(name="load_account")
async def load_account(user_id: str) -> Account:
    return Account(tier="PRO", stripe_customer_id="cus_stub")


@activity.defn(name="fetch_stripe_billing")
async def fetch_stripe_billing(customer_id: str) -> StripeBilling:
    return StripeBilling()


async def test_a_busy_workflow_continues_as_new_and_keeps_its_state(env):
    queue, user_id = f"tq-{uuid.uuid4().hex[:6]}", f"user-{uuid.uuid4().hex[:6]}"
    handle = await env.client.start_workflow(
        SubscriptionWorkflow.run, SubscriptionState(user_id=user_id, operations=7, events_per_run=3),
        id=subscription_workflow_id(user_id), task_queue=queue)
    first_run = handle.result_run_id
    async with Worker(env.client, task_queue=queue, workflows=[SubscriptionWorkflow],
                      activities=[load_account, fetch_stripe_billing]):
        # More events than two runs take, sent back to back: some arrive while a run is about to
        # continue as new, and must be handled rather than lost or left waiting.
        for number in range(7):
            await handle.signal(SubscriptionWorkflow.stripe_event, StripeEventNotice(
                event_id=f"evt_{number}", type="customer.subscription.updated", created=number))
        latest = env.client.get_workflow_handle(subscription_workflow_id(user_id))
        view = await eventually(lambda: latest.query(SubscriptionWorkflow.status), lambda v: v.events_handled == 7)
        description = await latest.describe()
    assert description.run_id != first_run and view.tier == "PRO"
    history = await env.client.get_workflow_handle(subscription_workflow_id(user_id), run_id=first_run).fetch_history()
    assert any(e.HasField("workflow_execution_continued_as_new_event_attributes") for e in history.events)
