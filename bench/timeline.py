"""Where a turn's time to first token goes, read from its Temporal history.

The server stamps every history event; the client knows when it sent `POST .../stream` and when
the first `text-delta` arrived (all on one host, one clock). The phases between them:

- api_to_workflow: the API's checks (database, spend, message rate) and update-with-start
  reaching Temporal: POST sent -> WorkflowExecutionStarted;
- first_workflow_task: the worker's first workflow task (accepts the message, schedules the
  stream and store activities) -> its WorkflowTaskCompleted;
- prepare: those activities and the workflow task that schedules the model round ->
  the model round's ActivityTaskScheduled;
- model_dispatch: the model round activity reaching the worker -> its ActivityTaskStarted;
- model_to_client: the model call, its first chunk through Redis, the API and the socket ->
  the first `text-delta` at the client (the direct baseline spends its whole time here).
"""

from typing import Optional

from temporalio.api.enums.v1 import EventType

from bench.sse_client import StreamResult
from bench.stack import BenchStack

PHASES = ("api_to_workflow", "first_workflow_task", "prepare", "model_dispatch", "model_to_client")
MODEL_ACTIVITY = "stream_model_round"


def _seconds(event) -> float:
    return event.event_time.seconds + event.event_time.nanos / 1e9


async def phases(stack: BenchStack, session_id: str, result: StreamResult) -> Optional[dict[str, float]]:
    if result.first_token is None:
        return None
    client = await stack.temporal()
    history = await client.get_workflow_handle(f"copilot-turn/{session_id}").fetch_history()
    started = first_task_done = model_scheduled = model_started = None
    model_event_id = None
    for event in history.events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            started = _seconds(event)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and first_task_done is None:
            first_task_done = _seconds(event)
        elif (kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED and model_event_id is None
              and event.activity_task_scheduled_event_attributes.activity_type.name == MODEL_ACTIVITY):
            model_scheduled, model_event_id = _seconds(event), event.event_id
        elif (kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED and model_started is None
              and event.activity_task_started_event_attributes.scheduled_event_id == model_event_id):
            model_started = _seconds(event)
    if None in (started, first_task_done, model_scheduled, model_started):
        return None
    sent = result.started_wall
    first_token = sent + result.first_token
    return {"api_to_workflow": started - sent, "first_workflow_task": first_task_done - started,
            "prepare": model_scheduled - first_task_done, "model_dispatch": model_started - model_scheduled,
            "model_to_client": first_token - model_started}
