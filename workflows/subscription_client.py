"""How the API talks to a user's subscription workflow: start-or-update, signal-or-start, query."""

import uuid
from datetime import timedelta
from typing import Optional

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from models.subscription import ChangeTierRequest, StripeEventNotice, SubscriptionState, SubscriptionView
from settings import Settings
from workflows import search_attributes
from workflows.subscription import SubscriptionWorkflow, subscription_workflow_id


class SubscriptionChangeFailed(Exception):
    """The workflow refused or could not make the change; `kind` is the failure type."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def _start_options(settings: Settings, user_id: str) -> dict:
    return dict(
        id=subscription_workflow_id(user_id), task_queue=settings.temporal_task_queue,
        memo={"title": f"Subscription of {user_id}"},
        search_attributes=TypedSearchAttributes([
            SearchAttributePair(search_attributes.USER_ID, user_id),
            SearchAttributePair(search_attributes.KIND, "subscription"),
        ]),
    )


async def change_tier(client: Client, settings: Settings, user_id: str,
                      request: ChangeTierRequest) -> SubscriptionView:
    """Applies the change inside the user's workflow, starting it if this is the first one."""
    operation = WithStartWorkflowOperation(
        SubscriptionWorkflow.run, SubscriptionState(user_id=user_id),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING, **_start_options(settings, user_id))
    try:
        return await client.execute_update_with_start_workflow(
            SubscriptionWorkflow.change_tier, request, start_workflow_operation=operation,
            id=f"change-tier-{uuid.uuid4()}")
    except WorkflowUpdateFailedError as failure:
        cause = failure.cause
        if isinstance(cause, ApplicationError):
            raise SubscriptionChangeFailed(cause.type or "", cause.message) from failure
        raise


async def subscription_view(client: Client, user_id: str) -> Optional[SubscriptionView]:
    """The workflow's view (pending change and so on); None for a user who never had one."""
    try:
        return await client.get_workflow_handle(subscription_workflow_id(user_id)).query(
            SubscriptionWorkflow.status, rpc_timeout=timedelta(seconds=5))
    except RPCError as failure:
        if failure.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def deliver_stripe_event(client: Client, settings: Settings, user_id: str, notice: StripeEventNotice) -> None:
    await client.start_workflow(
        SubscriptionWorkflow.run, SubscriptionState(user_id=user_id), start_signal="stripe_event",
        start_signal_args=[notice], **_start_options(settings, user_id))
