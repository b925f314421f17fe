"""Events: what every change emits, the `/v1/events` listing, and their webhook delivery.

An event names the API request that caused it (`event.request`), so events emitted while the
server answers a request are made inside `request_context`; the clock's own work names none.
"""

import copy
from contextlib import contextmanager
from typing import Any, Iterator

from local.stripe.core import RequestContext, SandboxCore
from local.stripe.errors import missing
from local.stripe.webhooks import Event


class EventsMixin(SandboxCore):
    @property
    def webhook_url(self) -> str | None:
        return self.webhooks.url

    @webhook_url.setter
    def webhook_url(self, url: str | None) -> None:
        self.webhooks.url = url

    async def flush_webhooks(self, timeout: float = 10.0) -> None:
        """Waits until every queued event has been delivered (or given up on)."""
        await self.webhooks.flush(timeout)

    async def redeliver(self, event_id: str) -> bool:
        """Sends an event again, with the same id, as Stripe's "Resend" does. True if it was
        accepted."""
        return await self.webhooks.send_now(self.event(event_id))

    def event(self, event_id: str) -> Event:
        for event in self.events:
            if event.id == event_id:
                return event
        raise missing("event", event_id)

    def events_of(self, *types: str) -> list[Event]:
        return [e for e in self.events if e.type in types]

    def list_events(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = params.get("type")
        return self._page([dict(e) for e in self.events if not wanted or e.type == wanted], params, "/v1/events")

    def retrieve_event(self, event_id: str) -> dict[str, Any]:
        return copy.deepcopy(dict(self.event(event_id)))

    @contextmanager
    def request_context(self, request_id: str | None, idempotency_key: str | None,
                        api_version: str | None) -> Iterator[None]:
        """Events emitted inside name the request that caused them (`event.request`)."""
        saved, self._request = self._request, RequestContext(request_id, idempotency_key, api_version)
        try:
            yield
        finally:
            self._request = saved

    def _emit(self, type_: str, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> Event:
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous is not None:
            data["previous_attributes"] = copy.deepcopy(previous)
        queued = self.deliver_webhooks and bool(self.webhook_url)
        event = Event(self._new_id("event"), type_, self.now(), data,
                      {"id": self._request.id, "idempotency_key": self._request.idempotency_key}, int(queued))
        self.events.append(event)
        if queued:
            self.webhooks.enqueue(event)
        return event
