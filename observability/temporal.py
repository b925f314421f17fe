"""The request's ids travel with the work it starts: a Temporal header set by the client (the
API's update-with-start, signals, updates) with the request id and the trace id (the caller's,
when tracing is off), read by the workflow and handed to every activity, child workflow and
continue-as-new it starts, and opened as the log context of each activity. So a worker's lines
about a turn carry the ids of the request that started it. Nothing is added when no request is
bound (a worker's own calls, a timer)."""

from typing import Any, Mapping, NoReturn, Optional

from temporalio import client, worker
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadConverter

from observability import logs

HEADER = "copilot-log-context"
_converter = PayloadConverter.default
Carried = Optional[dict[str, str]]


def _bound() -> Carried:
    fields = {name: logs.current(name) for name in logs.CARRIED}
    return {k: v for k, v in fields.items() if v} or None


def _with_ids(headers: Mapping[str, Payload], fields: Carried) -> Mapping[str, Payload]:
    if not fields or HEADER in headers:
        return headers
    return {**headers, HEADER: _converter.to_payloads([fields])[0]}


def _ids(headers: Mapping[str, Payload]) -> Carried:
    payload = headers.get(HEADER)
    if payload is None:
        return None
    try:
        value = _converter.from_payloads([payload])[0]
    except Exception:
        return None
    if not isinstance(value, dict):
        return None
    return {k: v for k, v in value.items() if k in logs.CARRIED and isinstance(v, str) and len(v) <= 128} or None


class LogContextInterceptor(client.Interceptor, worker.Interceptor):
    """On the client (the API's, the worker's) and so on every worker built from it."""

    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        return _ClientOutbound(next)

    def intercept_activity(self, next: worker.ActivityInboundInterceptor) -> worker.ActivityInboundInterceptor:
        return _ActivityInbound(next)

    def workflow_interceptor_class(self, input: worker.WorkflowInterceptorClassInput
                                   ) -> Optional[type[worker.WorkflowInboundInterceptor]]:
        return _WorkflowInbound


class _ClientOutbound(client.OutboundInterceptor):
    async def start_workflow(self, input: client.StartWorkflowInput) -> Any:
        input.headers = _with_ids(input.headers, _bound())
        return await super().start_workflow(input)

    async def start_update_with_start_workflow(self, input: client.StartWorkflowUpdateWithStartInput) -> Any:
        fields = _bound()
        input.start_workflow_input.headers = _with_ids(input.start_workflow_input.headers, fields)
        input.update_workflow_input.headers = _with_ids(input.update_workflow_input.headers, fields)
        return await super().start_update_with_start_workflow(input)

    async def start_workflow_update(self, input: client.StartWorkflowUpdateInput) -> Any:
        input.headers = _with_ids(input.headers, _bound())
        return await super().start_workflow_update(input)

    async def signal_workflow(self, input: client.SignalWorkflowInput) -> None:
        input.headers = _with_ids(input.headers, _bound())
        return await super().signal_workflow(input)


class _ActivityInbound(worker.ActivityInboundInterceptor):
    async def execute_activity(self, input: worker.ExecuteActivityInput) -> Any:
        fields = _ids(input.headers)
        if fields is None:
            return await super().execute_activity(input)
        from temporalio import activity

        logs.remember_run(activity.info().workflow_run_id, fields)  # for the SDK's next lines about the run
        token = logs.open_context(**fields)
        try:
            return await super().execute_activity(input)
        finally:
            logs.close_context(token)


class _WorkflowInbound(worker.WorkflowInboundInterceptor):
    """Keeps the ids of the request that started the run and opens them as the log context of the
    run and of each update (a follow-up: its own request); the SDK's own lines about the run's
    activities find them by the run's id (`logs.remember_run`)."""

    fields: Carried = None

    def init(self, outbound: worker.WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowOutbound(outbound, self))

    async def execute_workflow(self, input: worker.ExecuteWorkflowInput) -> Any:
        self.fields = _ids(input.headers)
        if self.fields:
            from temporalio import workflow

            logs.remember_run(workflow.info().run_id, self.fields)
            logs.open_context(**self.fields)  # the run's task: its context ends with it
        return await super().execute_workflow(input)

    async def handle_update_handler(self, input: worker.HandleUpdateInput) -> Any:
        fields = _ids(input.headers)
        if fields:
            logs.open_context(**fields)  # the update's own task
        return await super().handle_update_handler(input)


class _WorkflowOutbound(worker.WorkflowOutboundInterceptor):
    def __init__(self, next: worker.WorkflowOutboundInterceptor, root: _WorkflowInbound):
        super().__init__(next)
        self.root = root

    def start_activity(self, input: worker.StartActivityInput) -> Any:
        input.headers = _with_ids(input.headers, self.root.fields)
        return super().start_activity(input)

    def start_local_activity(self, input: worker.StartLocalActivityInput) -> Any:
        input.headers = _with_ids(input.headers, self.root.fields)
        return super().start_local_activity(input)

    async def start_child_workflow(self, input: worker.StartChildWorkflowInput) -> Any:
        input.headers = _with_ids(input.headers, self.root.fields)
        return await super().start_child_workflow(input)

    def continue_as_new(self, input: worker.ContinueAsNewInput) -> NoReturn:
        input.headers = _with_ids(input.headers, self.root.fields)
        super().continue_as_new(input)
