"""No-op stand-ins for the turn workflow's activities, for tests of the workflow's own logic on a
real Temporal server: each test replaces the ones it is about, by activity name."""

from temporalio import activity

from models.turn import (
    BeginTurnRequest,
    OpenStreamRequest,
    PublishRequest,
    RecordMessagesRequest,
    RecordUsageRequest,
    SpendCheck,
    SpendCheckRequest,
    StopRequest,
)


@activity.defn(name="open_stream")
async def open_stream(request: OpenStreamRequest) -> None: ...


@activity.defn(name="begin_turn")
async def begin_turn(request: BeginTurnRequest) -> None: ...


@activity.defn(name="record_messages")
async def record_messages(request: RecordMessagesRequest) -> None: ...


@activity.defn(name="publish_parts")
async def publish_parts(request: PublishRequest) -> None: ...


@activity.defn(name="record_usage")
async def record_usage(request: RecordUsageRequest) -> None: ...


@activity.defn(name="record_stop")
async def record_stop(request: StopRequest) -> None: ...


@activity.defn(name="check_spend")
async def check_spend(request: SpendCheckRequest) -> SpendCheck:
    return SpendCheck()


NO_OPS = {"open_stream": open_stream, "begin_turn": begin_turn, "record_messages": record_messages,
          "publish_parts": publish_parts, "record_usage": record_usage, "record_stop": record_stop,
          "check_spend": check_spend}


def stand_ins(**replacements) -> list:
    """The no-ops, with the named activities replaced (and others, such as the model round, added)."""
    return list({**NO_OPS, **replacements}.values())
