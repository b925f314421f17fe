"""What the workflows call: every activity's name, input and result, without its implementation.

Workflow code imports these stubs, never the implementations (which import the database, Redis,
the model client and the tools), so the workflow sandbox sees only `models`, and a workflow
cannot reach an implementation by accident. `worker.py` registers the implementations under
the same names; a unit test checks that every stub has one with the same signature.
"""

from typing import Optional

from temporalio import activity

from models.subscription import (
    Account,
    ApplyTierRequest,
    CancelAtPeriodEndRequest,
    ChangePriceRequest,
    CheckoutRequest,
    EnsureCustomerRequest,
    ReleaseScheduleRequest,
    SaveCustomerRequest,
    ScheduleDowngradeRequest,
    StripeBilling,
    Tier,
)
from models.turn import (
    BeginTurnRequest,
    OpenStreamRequest,
    PreparedSubSession,
    PrepareSubSessionRequest,
    PublishRequest,
    QueueInSessionRequest,
    RecordMessagesRequest,
    RecordUsageRequest,
    RoundRequest,
    RoundResult,
    SpendCheck,
    SpendCheckRequest,
    StopRequest,
    SubmitResult,
    ToolRequest,
    ToolResult,
)


def _stub(*_args, **_kwargs):
    raise NotImplementedError("an activity interface: the worker registers its implementation")


# The turn (CopilotTurnWorkflow)

@activity.defn
async def begin_turn(request: BeginTurnRequest) -> None:
    """Stores the messages that open the turn."""
    _stub()


@activity.defn
async def open_stream(request: OpenStreamRequest) -> None:
    """Starts the turn's Redis stream and points the session at it."""
    _stub()


@activity.defn
async def stream_model_round(request: RoundRequest) -> RoundResult:
    """One model call, its parts published as they arrive."""
    _stub()


@activity.defn
async def run_tool(request: ToolRequest) -> ToolResult:
    """One tool call."""
    _stub()


@activity.defn
async def record_messages(request: RecordMessagesRequest) -> None:
    """Idempotent chat rows."""
    _stub()


@activity.defn
async def record_usage(request: RecordUsageRequest) -> Optional[SpendCheck]:
    """A round's cost: its row and the user's spend windows; then whether the user may spend
    more. (None in histories recorded before it answered.)"""
    _stub()


@activity.defn
async def check_spend(request: SpendCheckRequest) -> SpendCheck:
    """Whether the user may spend more now."""
    _stub()


@activity.defn
async def publish_parts(request: PublishRequest) -> None:
    """UI parts, written once per dedup key."""
    _stub()


@activity.defn
async def record_stop(request: StopRequest) -> None:
    """What a stopped turn leaves behind."""
    _stub()


@activity.defn
async def prepare_sub_session(request: PrepareSubSessionRequest) -> PreparedSubSession:
    """Creates (or checks) a sub-session and the input of its turn."""
    _stub()


@activity.defn
async def queue_in_session(request: QueueInSessionRequest) -> SubmitResult:
    """Hands a prompt to a sub-session whose turn is already running."""
    _stub()


# The subscription (SubscriptionWorkflow)

@activity.defn
async def load_account(user_id: str) -> Account:
    _stub()


@activity.defn
async def save_stripe_customer(request: SaveCustomerRequest) -> None:
    _stub()


@activity.defn
async def apply_stripe_tier(request: ApplyTierRequest) -> Tier:
    _stub()


@activity.defn
async def ensure_stripe_customer(request: EnsureCustomerRequest) -> str:
    _stub()


@activity.defn
async def fetch_stripe_billing(customer_id: str) -> StripeBilling:
    _stub()


@activity.defn
async def create_checkout_session(request: CheckoutRequest) -> str:
    _stub()


@activity.defn
async def release_subscription_schedule(request: ReleaseScheduleRequest) -> bool:
    _stub()


@activity.defn
async def set_cancel_at_period_end(request: CancelAtPeriodEndRequest) -> None:
    _stub()


@activity.defn
async def change_subscription_price(request: ChangePriceRequest) -> None:
    _stub()


@activity.defn
async def schedule_downgrade(request: ScheduleDowngradeRequest) -> str:
    _stub()
