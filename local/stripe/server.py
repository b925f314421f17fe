"""The sandbox over HTTP: `uvicorn local.stripe.server:app --port 8002`.

`/v1/...` answers like Stripe's API (form-encoded parameters, JSON in Stripe's shapes, Stripe's
errors, `Idempotency-Key` replay). `/checkout/{id}` is the hosted payment page a person opens
in `make dev`. `/_test/...` drives the sandbox (clock, faults, webhooks) over HTTP, mirroring
the `StripeSandbox` methods tests call directly.

The module-level `app` is configured from the project's settings: the Stripe key and webhook
secret (with offline defaults when empty), the two tier prices, and from the environment
`OFFLINE_STRIPE_WEBHOOK_URL` and `OFFLINE_STRIPE_PUBLIC_URL`.
"""

import base64
import binascii
import hmac
import html
import json
import os
import re
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any, AsyncIterator, Callable

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from local.stripe.errors import StripeError, api_error, invalid
from local.stripe.forms import FormError, parse_query
from local.stripe.idempotency import StoredResponse
from local.stripe.objects import API_VERSION, new_id
from local.stripe.state import RequestRecord, StripeSandbox
from local.stripe.webhooks import Event
from settings import Settings, get_settings

DEFAULT_API_KEY = "sk_test_offline"
DEFAULT_WEBHOOK_SECRET = "whsec_offline"
DEFAULT_WEBHOOK_URL = "http://127.0.0.1:8000/api/credits/stripe_webhook"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8002"

Operation = Callable[[StripeSandbox, dict[str, Any], dict[str, str]], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    operation: Operation


def _route(method: str, template: str, operation: Operation) -> Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return Route(method, re.compile(regex + "$"), operation)


ROUTES = [
    _route("GET", "/v1/prices/{id}", lambda s, p, a: s.retrieve_price(a["id"])),
    _route("POST", "/v1/customers", lambda s, p, a: s.create_customer(p)),
    _route("GET", "/v1/customers/{id}", lambda s, p, a: s.retrieve_customer(a["id"])),
    _route("POST", "/v1/customers/{id}", lambda s, p, a: s.update_customer(a["id"], p)),
    _route("POST", "/v1/checkout/sessions", lambda s, p, a: s.create_checkout_session(p)),
    _route("GET", "/v1/checkout/sessions/{id}", lambda s, p, a: s.retrieve_checkout_session(a["id"])),
    _route("GET", "/v1/subscriptions", lambda s, p, a: s.list_subscriptions(p)),
    _route("GET", "/v1/subscriptions/{id}", lambda s, p, a: s.retrieve_subscription(a["id"])),
    _route("POST", "/v1/subscriptions/{id}", lambda s, p, a: s.update_subscription(a["id"], p)),
    _route("DELETE", "/v1/subscriptions/{id}", lambda s, p, a: s.cancel_subscription(a["id"], p)),
    _route("GET", "/v1/subscription_schedules", lambda s, p, a: s.list_schedules(p)),
    _route("POST", "/v1/subscription_schedules", lambda s, p, a: s.create_schedule(p)),
    _route("GET", "/v1/subscription_schedules/{id}", lambda s, p, a: s.retrieve_schedule(a["id"])),
    _route("POST", "/v1/subscription_schedules/{id}", lambda s, p, a: s.update_schedule(a["id"], p)),
    _route("POST", "/v1/subscription_schedules/{id}/release", lambda s, p, a: s.release_schedule(a["id"], p)),
    _route("POST", "/v1/subscription_schedules/{id}/cancel", lambda s, p, a: s.cancel_schedule(a["id"], p)),
    _route("GET", "/v1/events", lambda s, p, a: s.list_events(p)),
    _route("GET", "/v1/events/{id}", lambda s, p, a: s.retrieve_event(a["id"])),
]


def find_route(method: str, path: str) -> tuple[Route, dict[str, str]]:
    for route in ROUTES:
        if route.method == method and (match := route.pattern.match(path)):
            return route, match.groupdict()
    raise StripeError(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")


def _masked(key: str) -> str:
    """Enough of a wrong key to recognise it, never all of it."""
    if len(key) < 12:
        return "*" * len(key)
    return key[:8] + "*" * (len(key) - 12) + key[-4:]


def authenticate(request: Request, api_key: str) -> None:
    """`Authorization: Bearer <key>`, or Basic with the key as the user name (as `curl -u key:`)."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    key = ""
    if scheme.lower() == "bearer":
        key = credential.strip()
    elif scheme.lower() == "basic":
        try:
            key = base64.b64decode(credential.strip()).decode("utf-8").partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            key = ""
    if not key:
        raise StripeError(401, "invalid_request_error",
                          "You did not provide an API key. You need to provide your API key in the Authorization "
                          "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")
    if not hmac.compare_digest(key.encode("utf-8"), api_key.encode("utf-8")):
        raise StripeError(401, "invalid_request_error", f"Invalid API Key provided: {_masked(key)}",
                          code="api_key_invalid")


async def handle_api(sandbox: StripeSandbox, request: Request, path: str) -> Response:
    """One Stripe API request: auth, parameters, injected faults, idempotency, the operation."""
    method = request.method
    request_id = new_id("req_")
    version = request.headers.get("stripe-version") or None
    key = request.headers.get("idempotency-key") if method in ("POST", "DELETE") else None
    params: dict[str, Any] = {}
    headers = {"Request-Id": request_id, "Stripe-Version": version or API_VERSION}
    if key:
        headers["Idempotency-Key"] = key

    def respond(status: int, body: dict[str, Any], replayed: bool = False) -> Response:
        sandbox.requests.append(RequestRecord(method=method, path=path, idempotency_key=key, params=params,
                                              status=status, replayed=replayed, request_id=request_id,
                                              api_version=version))
        extra = {"Idempotent-Replayed": "true"} if replayed else {}
        return JSONResponse(body, status_code=status, headers={**headers, **extra})

    try:
        authenticate(request, sandbox.api_key)
        params = parse_query(await request.body() if method == "POST" else request.url.query)
        route, ids = find_route(method, path)
        sandbox.process_due()
        if fault := sandbox.faults.take(method, path, after=False):
            return respond(fault.status, api_error(fault.status).body())
        if key and (stored := sandbox.idempotency.lookup(key, method, path, params)):
            return respond(stored.status, stored.body, replayed=True)
        with sandbox.request_context(request_id, key, version):
            body = route.operation(sandbox, params, ids)
    except FormError as exc:
        return respond(400, invalid(str(exc), param=exc.param).body())
    except StripeError as exc:
        # Like Stripe, a request refused before it acted stores no idempotent result.
        return respond(exc.status, exc.body())
    if key:
        sandbox.idempotency.store(key, StoredResponse(method, path, params, 200, body))
    if fault := sandbox.faults.take(method, path, after=True):
        return respond(fault.status, api_error(fault.status).body())
    return respond(200, body)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}"
        "button{font-size:1.1rem;padding:.6rem 2rem}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>", status_code=status)


def _checkout_page(sandbox: StripeSandbox, session_id: str) -> HTMLResponse:
    session = sandbox.checkout_sessions.get(session_id)
    if session is None:
        return _page("Checkout not found", "<p>This checkout link is not valid.</p>", 404)
    if session["status"] != "open":
        return _page("Already paid", f"<p>This checkout is {html.escape(session['status'])}.</p>")
    amount = f"${session['amount_total'] / 100:,.2f}"
    cancel = (f"<p><a href='{html.escape(session['cancel_url'])}'>Cancel</a></p>" if session["cancel_url"] else "")
    customer = sandbox.customers.get(session["customer"] or "", {})
    who = customer.get("email") or session["customer_email"] or session["customer"] or "a new customer"
    return _page("Offline Stripe checkout",
                 f"<p>{html.escape(amount)} per month for {html.escape(str(who))}.</p>"
                 f"<form method='post' action='/checkout/{html.escape(session_id)}/pay'>"
                 "<button type='submit'>Pay</button></form>" + cancel)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise invalid(f"Invalid JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise invalid("The JSON body must be an object.")
    return body


def _event_summary(event: Event) -> dict[str, Any]:
    return {**event, "delivered": event.delivered, "delivery_attempts": event.attempts,
            "last_delivery_error": event.last_error}


def create_app(sandbox: StripeSandbox) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await sandbox.webhooks.start()
        try:
            yield
        finally:
            await sandbox.webhooks.stop()

    app = FastAPI(title="Offline Stripe sandbox", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.sandbox = sandbox

    @app.exception_handler(StripeError)
    async def stripe_error(_request: Request, exc: StripeError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.api_route("/v1/{path:path}", methods=["GET", "POST", "DELETE"])
    async def api(request: Request, path: str) -> Response:
        return await handle_api(sandbox, request, "/v1/" + path)

    @app.get("/checkout/{session_id}")
    async def checkout_page(session_id: str) -> HTMLResponse:
        return _checkout_page(sandbox, session_id)

    @app.post("/checkout/{session_id}/pay")
    async def checkout_pay(session_id: str) -> Response:
        session = sandbox.checkout_sessions.get(session_id)
        if session is None:
            return _page("Checkout not found", "<p>This checkout link is not valid.</p>", 404)
        if session["status"] == "open":
            sandbox.complete_checkout(session_id)
        target = sandbox.success_redirect(session_id)
        if target is None:
            return _page("Payment complete", "<p>You can close this page.</p>")
        return RedirectResponse(target, status_code=303)

    # The test-helper routes take the API key like the API does.
    async def test_body(request: Request) -> dict[str, Any]:
        authenticate(request, sandbox.api_key)
        return await _json_body(request)

    @app.get("/_test/clock")
    async def clock(request: Request) -> dict[str, Any]:
        await test_body(request)
        return {"now": sandbox.now()}

    @app.post("/_test/clock/advance")
    async def advance(request: Request) -> dict[str, Any]:
        body = await test_body(request)
        seconds = body.get("seconds")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
            raise invalid("seconds must be a number of seconds, 0 or more", param="seconds")
        events = sandbox.advance(seconds)
        return {"now": sandbox.now(), "events": [{"id": e.id, "type": e.type} for e in events]}

    @app.post("/_test/checkout/{session_id}/complete")
    async def complete(session_id: str, request: Request) -> dict[str, Any]:
        await test_body(request)
        return sandbox.complete_checkout(session_id)

    @app.post("/_test/subscriptions/{subscription_id}/fail_payment")
    async def fail_payment(subscription_id: str, request: Request) -> dict[str, Any]:
        await test_body(request)
        return sandbox.fail_payment(subscription_id)

    @app.post("/_test/faults")
    async def add_fault(request: Request) -> dict[str, Any]:
        body = await test_body(request)
        if not body.get("method") or not body.get("path_prefix"):
            raise invalid("method and path_prefix are required")
        try:
            status, count = int(body.get("status", 500)), int(body.get("count", 1))
        except (TypeError, ValueError) as exc:
            raise invalid("status and count must be integers") from exc
        fault = sandbox.inject_fault(str(body["method"]), str(body["path_prefix"]), status, count,
                                     bool(body.get("after", False)))
        return asdict(fault)

    @app.delete("/_test/faults")
    async def clear_faults(request: Request) -> dict[str, Any]:
        await test_body(request)
        sandbox.faults.clear()
        return {"cleared": True}

    @app.post("/_test/webhooks")
    async def webhooks(request: Request) -> dict[str, Any]:
        body = await test_body(request)
        if "deliver" in body:
            sandbox.deliver_webhooks = bool(body["deliver"])
        if "url" in body:
            sandbox.webhook_url = body["url"] or None
        return {"deliver": sandbox.deliver_webhooks, "url": sandbox.webhook_url}

    @app.post("/_test/webhooks/flush")
    async def flush(request: Request) -> dict[str, Any]:
        await test_body(request)
        await sandbox.flush_webhooks()
        return {"flushed": True}

    @app.get("/_test/events")
    async def events(request: Request) -> dict[str, Any]:
        await test_body(request)
        return {"object": "list", "data": [_event_summary(e) for e in sandbox.events]}

    @app.post("/_test/events/{event_id}/redeliver")
    async def redeliver(event_id: str, request: Request) -> dict[str, Any]:
        await test_body(request)
        delivered = await sandbox.redeliver(event_id)
        return {"id": event_id, "delivered": delivered}

    return app


def sandbox_from_settings(settings: Settings | None = None) -> StripeSandbox:
    settings = settings or get_settings()
    return StripeSandbox(
        api_key=settings.stripe_api_key or DEFAULT_API_KEY,
        webhook_secret=settings.stripe_webhook_secret or DEFAULT_WEBHOOK_SECRET,
        prices={settings.stripe_price_pro: settings.tier_cost_cents_pro,
                settings.stripe_price_business: settings.tier_cost_cents_business},
        public_base_url=os.environ.get("OFFLINE_STRIPE_PUBLIC_URL", DEFAULT_PUBLIC_URL),
        webhook_url=os.environ.get("OFFLINE_STRIPE_WEBHOOK_URL", DEFAULT_WEBHOOK_URL) or None,
    )


app = create_app(sandbox_from_settings())
