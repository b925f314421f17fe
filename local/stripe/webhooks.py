"""Events, their signatures and their delivery to the webhook endpoint.

Signatures are exactly Stripe's: `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<payload>" keyed with the endpoint secret>`. The timestamp is the real wall clock, not the
sandbox clock: receivers (`stripe.Webhook.construct_event`) reject signatures older than five
minutes, and a test that moved the sandbox clock a month ahead must still be believed.
"""

import asyncio
import collections
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import httpx

from local.stripe.objects import API_VERSION

log = logging.getLogger(__name__)


class Event(dict[str, Any]):
    """A Stripe event. The dict is exactly the JSON Stripe sends (`json.dumps(event)` is a webhook
    body); the delivery bookkeeping lives in attributes, outside that JSON."""

    def __init__(self, event_id: str, type_: str, created: int, data: dict[str, Any],
                 request: dict[str, str | None], pending_webhooks: int) -> None:
        super().__init__(id=event_id, object="event", api_version=API_VERSION, created=created, data=data,
                         livemode=False, pending_webhooks=pending_webhooks, request=request, type=type_)
        self.delivered = False
        self.attempts = 0
        self.last_error: str | None = None

    @property
    def id(self) -> str:
        return self["id"]

    @property
    def type(self) -> str:
        return self["type"]


def signature_header(payload: str, secret: str, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.{payload}".encode("utf-8"), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class WebhookDispatcher:
    """Delivers queued events one at a time, in order, from a background task.

    A non-2xx answer or a connection error is retried after each of `retry_delays`; after the
    last one the event stays undelivered (`Event.delivered` false) and the queue moves on, as an
    endpoint that is down for good would see it. Everything asyncio is created in `start()`, on
    the loop that serves the app, so the sandbox itself can be built before any loop exists.
    """

    def __init__(self, secret: str, url: str | None, retry_delays: tuple[float, ...] = (0.05, 0.2, 0.5),
                 timeout: float = 5.0) -> None:
        self.secret = secret
        self.url = url
        self.retry_delays = retry_delays
        self.timeout = timeout
        self._pending: collections.deque[Event] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._client: httpx.AsyncClient | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def enqueue(self, event: Event) -> None:
        self._pending.append(event)
        if self._wake is not None:
            self._wake.set()

    async def start(self) -> None:
        if self.running:
            return
        self._wake = asyncio.Event()
        self._client = httpx.AsyncClient(timeout=self.timeout)
        self._task = asyncio.create_task(self._run(), name="offline-stripe-webhooks")
        if self._pending:
            self._wake.set()

    async def stop(self) -> None:
        """Stops delivering; events still queued stay queued for the next `start()` or `flush()`."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._wake = None

    async def flush(self, timeout: float = 10.0) -> None:
        """Waits until every queued event has been delivered or given up on. Without a running
        delivery task (a sandbox used without its app) it delivers them itself."""
        async with asyncio.timeout(timeout):
            if not self.running:
                async with httpx.AsyncClient(timeout=self.timeout) as client:
                    while self._pending:
                        await self._deliver(self._pending[0], client)
                        self._pending.popleft()
                return
            while self._pending:
                if not self.running:
                    raise RuntimeError("the webhook delivery task stopped with events still queued")
                await asyncio.sleep(0.01)

    async def send_now(self, event: Event) -> bool:
        """One delivery (with retries) outside the queue: a redelivery."""
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            return await self._deliver(event, client)

    async def _run(self) -> None:
        assert self._wake is not None and self._client is not None
        while True:
            while self._pending:
                # Removed only once handled, so `flush()` also waits for the event in flight.
                await self._deliver(self._pending[0], self._client)
                self._pending.popleft()
            self._wake.clear()
            await self._wake.wait()

    async def _deliver(self, event: Event, client: httpx.AsyncClient) -> bool:
        for delay in (*self.retry_delays, None):
            url = self.url
            if not url:
                event.last_error = "no webhook URL configured"
                return False
            event.attempts += 1
            payload = json.dumps(event, indent=2)
            try:
                response = await client.post(url, content=payload.encode("utf-8"), headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "Stripe-Signature": signature_header(payload, self.secret),
                    "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                })
                if 200 <= response.status_code < 300:
                    event.delivered, event.last_error = True, None
                    event["pending_webhooks"] = 0
                    return True
                event.last_error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                event.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("webhook %s (%s) to %s failed: %s", event.id, event.type, url, event.last_error)
            if delay is not None:
                await asyncio.sleep(delay)
        return False
