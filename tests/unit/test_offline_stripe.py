"""The offline Stripe sandbox, through the real `stripe` library and a webhook receiver that
checks signatures with `stripe.Webhook.construct_event`."""

import json
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import httpx
import pytest
import stripe
from fastapi import FastAPI, Request, Response

from local.stack.process import free_port
from local.stripe.forms import parse_query
from local.stripe.objects import PERIOD_SECONDS
from local.stripe.server import create_app
from local.stripe.state import StripeSandbox
from local.stripe.webhooks import signature_header
from tests.support.servers import serve, shutdown

pytestmark = pytest.mark.timeout(30)

API_KEY = "sk_test_sandbox_0123456789"
SECRET = "whsec_sandbox_test"
PRO, BUSINESS = "price_pro_test", "price_business_test"
PRICES = {PRO: 2_000, BUSINESS: 10_000}


@dataclass
class Receiver:
    """The webhook endpoint: keeps every event whose signature holds, refuses the rest."""

    url: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    fail_next: int = 0  # answer 500 to this many valid deliveries first

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]


def receiver_app(receiver: Receiver) -> FastAPI:
    app = FastAPI()

    @app.post("/webhook")
    async def webhook(request: Request) -> Response:
        payload = await request.body()
        try:
            event = stripe.Webhook.construct_event(payload, request.headers.get("stripe-signature"), SECRET)
        except (ValueError, stripe.SignatureVerificationError):
            receiver.rejected += 1
            return Response(status_code=400)
        if receiver.fail_next:
            receiver.fail_next -= 1
            return Response(status_code=500)
        assert event.id == json.loads(payload)["id"]
        receiver.events.append(json.loads(payload))
        return Response(status_code=200)

    return app


@pytest.fixture(scope="module")
async def receiver_server() -> AsyncIterator[Receiver]:
    receiver, port = Receiver(), free_port()
    receiver.url = f"http://127.0.0.1:{port}/webhook"
    server, task = await serve(receiver_app(receiver), port)
    yield receiver
    await shutdown(server, task)


@pytest.fixture
def receiver(receiver_server: Receiver) -> Receiver:
    receiver_server.events.clear()
    receiver_server.rejected = receiver_server.fail_next = 0
    return receiver_server


@dataclass
class Env:
    sandbox: StripeSandbox
    client: stripe.StripeClient
    base_url: str
    receiver: Receiver

    async def delivered(self) -> list[str]:
        """Every event so far, once delivered: their types, in order."""
        await self.sandbox.flush_webhooks(timeout=5)
        assert self.receiver.rejected == 0
        return self.receiver.types()


@pytest.fixture
async def env(receiver: Receiver) -> AsyncIterator[Env]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    sandbox = StripeSandbox(API_KEY, SECRET, PRICES, base_url, webhook_url=receiver.url)
    sandbox.webhooks.retry_delays = (0.01, 0.02)
    server, task = await serve(create_app(sandbox), port)
    http_client = stripe.HTTPXClient(timeout=5)
    client = stripe.StripeClient(API_KEY, base_addresses={"api": base_url}, http_client=http_client,
                                 max_network_retries=0)
    try:
        yield Env(sandbox, client, base_url, receiver)
    finally:
        await http_client.close_async()
        await shutdown(server, task)


async def subscribe(env: Env, price: str = PRO) -> tuple[str, str]:
    """A customer with an active subscription to `price`: (customer id, subscription id)."""
    customer = await env.client.v1.customers.create_async(params={"email": "ada@example.com",
                                                                  "metadata": {"user_id": "user-1"}})
    session = await env.client.v1.checkout.sessions.create_async(params={
        "mode": "subscription", "customer": customer.id, "client_reference_id": "user-1",
        "line_items": [{"price": price, "quantity": 1}],
        "success_url": "http://127.0.0.1:3000/billing?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://127.0.0.1:3000/billing", "metadata": {"user_id": "user-1"},
        "subscription_data": {"metadata": {"user_id": "user-1"}},
    })
    return customer.id, env.sandbox.complete_checkout(session.id)["id"]


async def test_checkout_on_the_hosted_page_gives_an_active_subscription_and_signed_events(env: Env):
    customer = await env.client.v1.customers.create_async(
        params={"email": "ada@example.com", "name": "Ada", "metadata": {"user_id": "user-1"}},
        options={"idempotency_key": "customer-user-1"})
    assert customer.id.startswith("cus_") and customer.metadata["user_id"] == "user-1"
    session = await env.client.v1.checkout.sessions.create_async(params={
        "mode": "subscription", "customer": customer.id, "client_reference_id": "user-1",
        "line_items": [{"price": PRO, "quantity": 1}],
        "success_url": "http://127.0.0.1:3000/ok?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://127.0.0.1:3000/no",
        "metadata": {"user_id": "user-1"}, "subscription_data": {"metadata": {"user_id": "user-1", "tier": "PRO"}},
    })
    assert session.id.startswith("cs_") and session.status == "open" and session.subscription is None
    assert session.url == f"{env.base_url}/checkout/{session.id}" and session.amount_total == 2_000

    async with httpx.AsyncClient(timeout=5) as browser:
        page = await browser.get(session.url)
        assert page.status_code == 200 and "Pay" in page.text
        paid = await browser.post(f"{session.url}/pay")
    assert paid.status_code == 303 and paid.headers["location"] == f"http://127.0.0.1:3000/ok?session={session.id}"

    subscriptions = await env.client.v1.subscriptions.list_async(
        params={"customer": customer.id, "status": "all", "limit": 10})
    assert len(subscriptions.data) == 1
    sub = subscriptions.data[0]
    assert sub.status == "active" and sub.metadata["tier"] == "PRO" and sub.schedule is None
    item = sub["items"].data[0]
    assert item.price.id == PRO and item.price.unit_amount == 2_000 and item.quantity == 1
    assert item.current_period_end - item.current_period_start == PERIOD_SECONDS
    assert (await env.client.v1.checkout.sessions.retrieve_async(session.id)).subscription == sub.id

    assert await env.delivered() == ["customer.subscription.created", "checkout.session.completed"]
    completed = env.receiver.events[1]["data"]["object"]
    assert completed["subscription"] == sub.id and completed["client_reference_id"] == "user-1"
    # The JSON sent is the event recorded (then still pending, now delivered).
    assert [{**e, "pending_webhooks": 0} for e in env.receiver.events] == env.sandbox.events
    assert all(e.delivered for e in env.sandbox.events)


async def test_a_scheduled_downgrade_takes_effect_at_the_period_end(env: Env):
    _customer, sub_id = await subscribe(env, BUSINESS)
    schedule = await env.client.v1.subscription_schedules.create_async(params={"from_subscription": sub_id},
                                                                      options={"idempotency_key": "downgrade-1"})
    assert schedule.id.startswith("sub_sched_") and schedule.status == "active" and schedule.end_behavior == "release"
    start, end = schedule.phases[0].start_date, schedule.phases[0].end_date
    assert (schedule.current_phase.start_date, schedule.current_phase.end_date) == (start, end)
    assert (await env.client.v1.subscriptions.retrieve_async(sub_id)).schedule == schedule.id

    schedule = await env.client.v1.subscription_schedules.update_async(schedule.id, params={
        "phases": [{"items": [{"price": BUSINESS, "quantity": 1}], "start_date": start, "end_date": end},
                   {"items": [{"price": PRO, "quantity": 1}], "start_date": end}],
        "end_behavior": "release",
    })
    assert [(p.start_date, p.end_date) for p in schedule.phases] == [(start, end), (end, end + PERIOD_SECONDS)]
    assert (await env.client.v1.subscriptions.retrieve_async(sub_id))["items"].data[0].price.id == BUSINESS

    env.sandbox.advance(end - env.sandbox.now() + 1)
    sub = await env.client.v1.subscriptions.retrieve_async(sub_id)
    assert sub["items"].data[0].price.id == PRO and sub.status == "active"
    assert (sub.current_period_start, sub.current_period_end) == (end, end + PERIOD_SECONDS)
    assert (await env.client.v1.subscription_schedules.retrieve_async(schedule.id)).status == "active"

    env.sandbox.advance(PERIOD_SECONDS)
    done = await env.client.v1.subscription_schedules.retrieve_async(schedule.id)
    assert done.status == "completed" and done.completed_at == end + PERIOD_SECONDS and done.current_phase is None
    sub = await env.client.v1.subscriptions.retrieve_async(sub_id)
    assert sub.schedule is None and sub.status == "active" and sub["items"].data[0].price.id == PRO

    types = await env.delivered()
    assert types[2:] == ["subscription_schedule.created", "customer.subscription.updated",
                         "subscription_schedule.updated", "customer.subscription.updated",
                         "subscription_schedule.completed", "customer.subscription.updated"]
    downgrade = env.receiver.events[5]["data"]
    assert downgrade["object"]["items"]["data"][0]["price"]["id"] == PRO
    assert downgrade["previous_attributes"]["items"]["data"][0]["price"]["id"] == BUSINESS
    assert downgrade["previous_attributes"]["current_period_end"] == end
    assert env.receiver.events[5]["created"] == end
    assert [c["new_price"] for c in env.sandbox.price_changes] == [PRO]


async def test_releasing_twice_is_refused(env: Env):
    _customer, sub_id = await subscribe(env)
    schedule = await env.client.v1.subscription_schedules.create_async(params={"from_subscription": sub_id})
    with pytest.raises(stripe.InvalidRequestError, match="already attached to a schedule"):
        await env.client.v1.subscription_schedules.create_async(params={"from_subscription": sub_id})
    with pytest.raises(stripe.InvalidRequestError, match="managed by the subscription schedule"):
        await env.client.v1.subscriptions.update_async(sub_id, params={"cancel_at_period_end": True})

    released = await env.client.v1.subscription_schedules.release_async(schedule.id)
    assert released.status == "released" and released.released_subscription == sub_id and released.subscription is None
    assert (await env.client.v1.subscriptions.retrieve_async(sub_id)).schedule is None
    with pytest.raises(stripe.InvalidRequestError, match="currently in the `released` status") as again:
        await env.client.v1.subscription_schedules.release_async(schedule.id)
    assert again.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError, match="cannot update"):
        await env.client.v1.subscription_schedules.update_async(schedule.id, params={"end_behavior": "cancel"})
    assert (await env.delivered())[-2:] == ["subscription_schedule.released", "customer.subscription.updated"]


async def test_an_idempotency_key_replays_the_first_answer(env: Env):
    _customer, sub_id = await subscribe(env)
    options = {"idempotency_key": f"schedule-{sub_id}"}
    params = {"from_subscription": sub_id}
    first = await env.client.v1.subscription_schedules.create_async(params=params, options=options)
    second = await env.client.v1.subscription_schedules.create_async(params=params, options=options)
    assert second.id == first.id and env.sandbox.count_created("schedule") == 1
    assert [r["replayed"] for r in env.sandbox.requests if r["idempotency_key"] == options["idempotency_key"]] == [
        False, True]
    with pytest.raises(stripe.IdempotencyError):
        await env.client.v1.subscription_schedules.create_async(
            params={"from_subscription": sub_id, "metadata": {"other": "1"}}, options=options)
    assert env.sandbox.events_of("subscription_schedule.created") and len(
        env.sandbox.events_of("subscription_schedule.created")) == 1


async def test_a_response_lost_after_stripe_acted_is_safe_to_retry_with_the_same_key(env: Env):
    _customer, sub_id = await subscribe(env)
    env.sandbox.inject_fault("POST", "/v1/subscription_schedules", status=500, after=True)
    options = {"idempotency_key": f"schedule-{sub_id}"}
    with pytest.raises(stripe.APIError):
        await env.client.v1.subscription_schedules.create_async(params={"from_subscription": sub_id}, options=options)
    assert env.sandbox.count_created("schedule") == 1  # Stripe did the work
    retried = await env.client.v1.subscription_schedules.create_async(params={"from_subscription": sub_id},
                                                                     options=options)
    assert list(env.sandbox.schedules) == [retried.id] and env.sandbox.count_created("schedule") == 1

    env.sandbox.inject_fault("GET", "/v1/subscriptions/", status=503)
    with pytest.raises(stripe.APIError):
        await env.client.v1.subscriptions.retrieve_async(sub_id)
    assert (await env.client.v1.subscriptions.retrieve_async(sub_id)).schedule == retried.id


async def test_cancel_at_period_end_ends_the_subscription_when_the_period_ends(env: Env):
    customer_id, sub_id = await subscribe(env)
    sub = await env.client.v1.subscriptions.update_async(sub_id, params={"cancel_at_period_end": True},
                                                         options={"idempotency_key": f"cancel-{sub_id}"})
    assert sub.cancel_at_period_end is True and sub.cancel_at == sub.current_period_end and sub.status == "active"

    env.sandbox.advance(PERIOD_SECONDS + 60)
    ended = await env.client.v1.subscriptions.retrieve_async(sub_id)
    assert ended.status == "canceled" and ended.ended_at == sub.current_period_end
    assert (await env.client.v1.subscriptions.list_async(params={"customer": customer_id})).data == []
    every = await env.client.v1.subscriptions.list_async(params={"customer": customer_id, "status": "all"})
    assert [s.id for s in every.data] == [sub_id]

    types = await env.delivered()
    assert types[-2:] == ["customer.subscription.updated", "customer.subscription.deleted"]
    assert env.receiver.events[-2]["data"]["previous_attributes"] == {
        "cancel_at": None, "cancel_at_period_end": False, "canceled_at": None}
    assert env.receiver.events[-2]["request"]["idempotency_key"] == f"cancel-{sub_id}"


async def test_an_immediate_upgrade_is_invoiced_and_a_failed_payment_is_announced(env: Env):
    _customer, sub_id = await subscribe(env)
    sub = await env.client.v1.subscriptions.retrieve_async(sub_id)
    upgraded = await env.client.v1.subscriptions.update_async(sub_id, params={
        "items": [{"id": sub["items"].data[0].id, "price": BUSINESS}], "proration_behavior": "always_invoice"})
    assert upgraded["items"].data[0].price.id == BUSINESS and upgraded["items"].data[0].id == sub["items"].data[0].id
    change = env.sandbox.price_changes[-1]
    assert (change["old_price"], change["new_price"], change["proration_behavior"]) == (PRO, BUSINESS, "always_invoice")
    assert env.sandbox.invoices[change["invoice"]]["amount_due"] > 0

    invoice = env.sandbox.fail_payment(sub_id)
    assert (await env.client.v1.subscriptions.retrieve_async(sub_id)).status == "past_due"
    types = await env.delivered()
    assert types[-3:] == ["customer.subscription.updated", "invoice.payment_failed", "customer.subscription.updated"]
    failed = env.receiver.events[-2]["data"]["object"]
    assert failed["id"] == invoice["id"] and failed["subscription"] == sub_id and failed["attempt_count"] == 1
    assert failed["amount_due"] == 10_000


async def test_errors_have_stripes_shape(env: Env):
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        await env.client.v1.subscriptions.retrieve_async("sub_missing")
    assert unknown.value.http_status == 404 and unknown.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as bad_price:
        await env.client.v1.checkout.sessions.create_async(params={
            "mode": "subscription", "line_items": [{"price": "price_nope", "quantity": 1}],
            "success_url": "http://127.0.0.1:3000/ok"})
    assert bad_price.value.http_status == 400 and bad_price.value.param == "line_items[0][price]"
    assert (await env.client.v1.prices.retrieve_async(PRO)).unit_amount == 2_000

    _customer, sub_id = await subscribe(env)
    schedule = await env.client.v1.subscription_schedules.create_async(params={"from_subscription": sub_id})
    start = schedule.phases[0].start_date
    # The library's API version no longer has `iterations`; `duration` replaced it.
    with pytest.raises(stripe.InvalidRequestError, match="iterations"):
        await env.client.v1.subscription_schedules.update_async(schedule.id, params={
            "phases": [{"items": [{"price": PRO}], "start_date": start, "iterations": 2}]})
    with pytest.raises(stripe.InvalidRequestError, match="start date of the current phase"):
        await env.client.v1.subscription_schedules.update_async(schedule.id, params={
            "phases": [{"items": [{"price": PRO}], "start_date": start + 1}]})
    updated = await env.client.v1.subscription_schedules.update_async(schedule.id, params={
        "phases": [{"items": [{"price": PRO}], "start_date": start,
                    "duration": {"interval": "month", "interval_count": 2}}]})
    assert updated.phases[0].end_date == start + 2 * PERIOD_SECONDS

    http_client = stripe.HTTPXClient(timeout=5)
    wrong = stripe.StripeClient("sk_test_wrong_key_123456", base_addresses={"api": env.base_url},
                                http_client=http_client, max_network_retries=0)
    try:
        with pytest.raises(stripe.AuthenticationError) as denied:
            await wrong.v1.customers.create_async(params={"email": "x@example.com"})
    finally:
        await http_client.close_async()
    assert "sk_test_wrong_key_123456" not in str(denied.value) and denied.value.http_status == 401


async def test_webhooks_are_retried_lost_and_redelivered(env: Env):
    env.receiver.fail_next = 2
    await subscribe(env)
    assert await env.delivered() == ["customer.subscription.created", "checkout.session.completed"]
    assert env.sandbox.events[0].attempts == 3

    env.sandbox.deliver_webhooks = False
    env.sandbox.advance(PERIOD_SECONDS)
    renewal = env.sandbox.events[-1]
    assert renewal["type"] == "customer.subscription.updated" and not renewal.delivered
    assert len(await env.delivered()) == 2
    assert await env.sandbox.redeliver(renewal["id"])
    assert await env.sandbox.redeliver(renewal["id"])
    assert [e["id"] for e in env.receiver.events[2:]] == [renewal["id"], renewal["id"]]


async def test_forged_or_stale_signatures_are_refused(env: Env):
    await subscribe(env)
    payload = json.dumps(env.sandbox.events[0])
    verified = stripe.Webhook.construct_event(payload, signature_header(payload, SECRET), SECRET)
    assert verified.id == env.sandbox.events[0]["id"]
    tampered = payload.replace('"active"', '"canceled"')
    assert tampered != payload
    for body, header in ((payload, signature_header(payload, "whsec_forged")),
                         (payload, signature_header(payload, SECRET, timestamp=int(time.time()) - 600)),
                         (tampered, signature_header(payload, SECRET))):
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(body, header, SECRET)
    async with httpx.AsyncClient(timeout=5) as http:
        forged = await http.post(env.receiver.url, content=payload,
                                 headers={"Stripe-Signature": signature_header(payload, "whsec_forged")})
    assert forged.status_code == 400 and env.receiver.rejected == 1


async def test_the_http_test_helpers(env: Env):
    _customer, sub_id = await subscribe(env)
    auth = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=env.base_url, headers=auth, timeout=5) as http:
        anonymous = await http.post("/_test/clock/advance", json={"seconds": 60}, headers={"Authorization": ""})
        assert anonymous.status_code == 401
        fault = await http.post("/_test/faults",
                                json={"method": "GET", "path_prefix": "/v1/subscriptions", "status": 500})
        assert fault.status_code == 200
        assert (await http.get(f"/v1/subscriptions/{sub_id}")).json()["error"]["type"] == "api_error"
        advanced = (await http.post("/_test/clock/advance", json={"seconds": PERIOD_SECONDS})).json()
        assert [e["type"] for e in advanced["events"]] == ["customer.subscription.updated"]
        assert (await http.post("/_test/webhooks", json={"deliver": False})).json()["deliver"] is False
        events = (await http.get("/_test/events")).json()["data"]
        assert events[-1]["id"] == advanced["events"][0]["id"]
        redelivered = await http.post(f"/_test/events/{events[-1]['id']}/redeliver")
        assert redelivered.json() == {"id": events[-1]["id"], "delivered": True}
    assert [(r["path"], r["status"]) for r in env.sandbox.requests if r["method"] == "GET"] == [
        (f"/v1/subscriptions/{sub_id}", 500)]


def test_stripe_form_encoding_is_parsed_into_nested_params():
    parsed = parse_query("phases[0][items][0][price]=p&phases[0][items][0][quantity]=1&phases[1][start_date]=5"
                         "&expand[]=a&expand[]=b&metadata[0]=zero&metadata[user]=&flag=true")
    assert parsed == {"phases": [{"items": [{"price": "p", "quantity": "1"}]}, {"start_date": "5"}],
                      "expand": ["a", "b"], "metadata": {"0": "zero", "user": ""}, "flag": "true"}
