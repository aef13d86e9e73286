"""The local Stripe answers as Stripe does, seen through Stripe's own SDK."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

pytest.importorskip("stripe", reason="needs the billing extra")

import stripe

from omnistack_core.testing import LocalStripe, sign_stripe_webhook

# These tests drive the SDK's own HTTPXClient, which hands httpx the form as data=<str>, a
# deprecated use (the billing module's client sends it as content=).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Use 'content=<...>' to upload raw bytes/text content:DeprecationWarning"
)

SUCCESS_URL = "https://app.example.com/billing/done"


@asynccontextmanager
async def stripe_client(
    server: LocalStripe, *, api_key: str | None = None, max_network_retries: int | None = None
) -> AsyncIterator[stripe.StripeClient]:
    http_client = stripe.HTTPXClient()
    try:
        yield stripe.StripeClient(
            api_key or server.api_key,
            base_addresses={"api": server.url},
            http_client=http_client,
            max_network_retries=max_network_retries,
        )
    finally:
        await http_client.close_async()


@pytest.fixture
async def client(local_stripe: LocalStripe) -> AsyncIterator[stripe.StripeClient]:
    async with stripe_client(local_stripe) as sdk:
        yield sdk


async def raw(
    server: LocalStripe,
    method: str,
    path: str,
    *,
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = {"Authorization": f"Bearer {server.api_key}", **(headers or {})}
    async with httpx.AsyncClient(base_url=server.url) as http:
        return await http.request(method, path, data=data, headers=sent)


async def subscription_session(
    server: LocalStripe, client: stripe.StripeClient, *, trial_days: int | None = None
) -> tuple[str, str, str]:
    """A customer and an open subscription-mode session for a monthly price."""
    price = server.add_price("price_pro", unit_amount=1500, lookup_key="pro_monthly")
    customer = await client.v1.customers.create_async(params={"email": "ada@example.com"})
    subscription_data: dict[str, Any] = {"metadata": {"user_id": "u_1"}}
    if trial_days is not None:
        subscription_data["trial_period_days"] = trial_days
    session = await client.v1.checkout.sessions.create_async(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price, "quantity": 1}],
            "success_url": SUCCESS_URL,
            "subscription_data": subscription_data,
        }
    )
    return customer.id, price, session.id


async def subscribed(server: LocalStripe, client: stripe.StripeClient) -> tuple[str, str]:
    customer_id, _, session_id = await subscription_session(server, client)
    events = server.complete_checkout(session_id)
    return customer_id, events[1]["data"]["object"]["id"]


# Customers -------------------------------------------------------------------------------------


async def test_a_customer_is_created_and_retrieved(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    created = await client.v1.customers.create_async(
        params={"email": "ada@example.com", "name": "Ada", "metadata": {"user_id": "u_1"}}
    )
    found = await client.v1.customers.retrieve_async(created.id)

    assert created.id.startswith("cus_")
    assert created.object == "customer"
    assert created.livemode is False
    assert isinstance(created.created, int)
    assert (found.email, found.name, found.metadata.to_dict()) == (
        "ada@example.com",
        "Ada",
        {"user_id": "u_1"},
    )
    assert found.to_dict(for_json=True) == local_stripe.customers[created.id]


async def test_an_unknown_customer_is_a_404_resource_missing(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.customers.retrieve_async("cus_nope")

    error = caught.value
    assert error.http_status == 404
    assert error.code == "resource_missing"
    assert error.param == "id"
    assert error.user_message == "No such customer: 'cus_nope'"
    assert error.error is not None
    assert error.error.doc_url == "https://docs.stripe.com/error-codes/resource-missing"
    assert error.request_id is not None
    assert error.request_id.startswith("req_")


async def test_a_missing_api_key_is_a_401(local_stripe: LocalStripe) -> None:
    async with httpx.AsyncClient(base_url=local_stripe.url) as http:
        response = await http.get("/v1/customers/cus_1")

    assert response.status_code == 401
    assert response.headers["request-id"].startswith("req_")
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("You did not provide an API key.")


async def test_a_wrong_api_key_is_refused_masked(local_stripe: LocalStripe) -> None:
    wrong = "sk_test_" + "x" * 20 + "WXYZ"

    async with stripe_client(local_stripe, api_key=wrong) as sdk:
        with pytest.raises(stripe.AuthenticationError) as caught:
            await sdk.v1.customers.create_async(params={"email": "ada@example.com"})

    assert caught.value.http_status == 401
    assert caught.value.user_message == "Invalid API Key provided: sk_test_" + "*" * 20 + "WXYZ"
    assert local_stripe.customers == {}


async def test_an_unknown_parameter_is_refused(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.customers.create_async(params={"emial": "ada@example.com"})

    assert caught.value.code == "parameter_unknown"
    assert caught.value.param == "emial"
    assert caught.value.user_message == "Received unknown parameter: emial"
    assert local_stripe.customers == {}


async def test_an_unknown_route_is_unrecognized(local_stripe: LocalStripe) -> None:
    response = await raw(local_stripe, "GET", "/v1/xyz")

    assert response.status_code == 404
    assert response.json()["error"]["message"].startswith(
        "Unrecognized request URL (GET: /v1/xyz). Please see https://docs.stripe.com"
    )
    assert "code" not in response.json()["error"]


async def test_a_json_body_is_refused(local_stripe: LocalStripe) -> None:
    async with httpx.AsyncClient(base_url=local_stripe.url) as http:
        response = await http.post(
            "/v1/customers",
            json={"email": "ada@example.com"},
            headers={"Authorization": f"Bearer {local_stripe.api_key}"},
        )

    assert response.status_code == 400
    assert "unsupported Content-Type application/json" in response.json()["error"]["message"]
    assert local_stripe.customers == {}


# Checkout and the portal -----------------------------------------------------------------------


async def test_a_subscription_checkout_session_is_open_and_unpaid(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    customer_id, price, session_id = await subscription_session(local_stripe, client, trial_days=14)
    session = await client.v1.checkout.sessions.retrieve_async(session_id)

    assert session_id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert session.url == f"{local_stripe.url}/c/pay/{session_id}"
    assert (session.status, session.payment_status, session.subscription) == (
        "open",
        "unpaid",
        None,
    )
    assert (session.customer, session.mode) == (customer_id, "subscription")
    assert session.expires_at == session.created + 24 * 3600
    assert session.to_dict(for_json=True) == local_stripe.checkout_sessions[session_id]
    sent = next(r for r in local_stripe.requests if r.path == "/v1/checkout/sessions")
    assert sent.params["line_items"] == [{"price": price, "quantity": "1"}]
    assert sent.params["subscription_data"] == {
        "metadata": {"user_id": "u_1"},
        "trial_period_days": "14",
    }


async def test_checkout_keeps_the_reference_and_metadata(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    price = local_stripe.add_price(interval=None, unit_amount=500)

    session = await client.v1.checkout.sessions.create_async(
        params={
            "mode": "payment",
            "client_reference_id": "u_1",
            "line_items": [{"price": price, "quantity": 3}],
            "success_url": SUCCESS_URL,
            "cancel_url": "https://app.example.com/billing",
            "metadata": {"order": "o_1"},
            "allow_promotion_codes": True,
        }
    )

    assert session.client_reference_id == "u_1"
    assert session.metadata is not None
    assert session.metadata.to_dict() == {"order": "o_1"}
    assert (session.amount_total, session.currency) == (1500, "usd")
    assert session.allow_promotion_codes is True
    assert session.customer is None


async def test_checkout_with_an_unknown_price_names_the_param(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.create_async(
            params={
                "mode": "subscription",
                "line_items": [{"price": "price_nope", "quantity": 1}],
                "success_url": SUCCESS_URL,
            }
        )

    assert caught.value.http_status == 400
    assert caught.value.code == "resource_missing"
    assert caught.value.param == "line_items[0][price]"
    assert caught.value.user_message == "No such price: 'price_nope'"
    assert local_stripe.checkout_sessions == {}


@pytest.mark.parametrize(
    ("change", "code", "param"),
    [
        ({"success_url": None}, "parameter_missing", "success_url"),
        ({"mode": None}, "parameter_missing", "mode"),
        ({"customer": "cus_nope"}, "resource_missing", "customer"),
        ({"line_items": None}, "parameter_missing", "line_items"),
        ({"line_items": [{"price": "PRICE"}]}, "parameter_missing", "line_items[0][quantity]"),
        ({"success_url": "not a url"}, "url_invalid", "success_url"),
    ],
    ids=["success_url", "mode", "customer", "line_items", "quantity", "bad_url"],
)
async def test_an_invalid_checkout_session_is_refused(
    local_stripe: LocalStripe,
    client: stripe.StripeClient,
    change: dict[str, Any],
    code: str,
    param: str,
) -> None:
    price = local_stripe.add_price("PRICE")
    params: dict[str, Any] = {
        "mode": "subscription",
        "line_items": [{"price": price, "quantity": 1}],
        "success_url": SUCCESS_URL,
    } | change

    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.create_async(params=params)

    assert (caught.value.http_status, caught.value.code, caught.value.param) == (400, code, param)
    assert local_stripe.checkout_sessions == {}


async def test_an_embedded_session_needs_no_success_url(client: stripe.StripeClient) -> None:
    session = await client.v1.checkout.sessions.create_async(
        params={"mode": "setup", "ui_mode": "embedded_page", "return_url": SUCCESS_URL}
    )

    assert session.url is None
    assert session.client_secret is not None
    assert session.client_secret.startswith(f"{session.id}_secret_")


@pytest.mark.parametrize(
    ("mode", "interval", "message"),
    [
        ("subscription", None, "You must provide at least one recurring price"),
        ("payment", "month", "You specified `payment` mode but passed a recurring price"),
    ],
)
async def test_the_mode_must_match_the_prices(
    local_stripe: LocalStripe,
    client: stripe.StripeClient,
    mode: str,
    interval: str | None,
    message: str,
) -> None:
    price = local_stripe.add_price(interval=interval)

    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.create_async(
            params={
                "mode": mode,
                "line_items": [{"price": price, "quantity": 1}],
                "success_url": SUCCESS_URL,
            }
        )

    assert caught.value.user_message is not None
    assert caught.value.user_message.startswith(message)


async def test_a_portal_session_is_made_for_an_existing_customer(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    customer = await client.v1.customers.create_async(params={"email": "ada@example.com"})

    portal = await client.v1.billing_portal.sessions.create_async(
        params={"customer": customer.id, "return_url": "https://app.example.com/account"}
    )

    assert portal.id.startswith("bps_")
    assert portal.object == "billing_portal.session"
    assert portal.customer == customer.id
    assert portal.return_url == "https://app.example.com/account"
    assert portal.url.startswith(f"{local_stripe.url}/p/session/")
    assert local_stripe.portal_sessions[portal.id]["customer"] == customer.id


@pytest.mark.parametrize(
    ("params", "code"),
    [({}, "parameter_missing"), ({"customer": "cus_nope"}, "resource_missing")],
)
async def test_a_portal_session_needs_a_known_customer(
    local_stripe: LocalStripe, client: stripe.StripeClient, params: dict[str, str], code: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.billing_portal.sessions.create_async(params=params)

    assert (caught.value.code, caught.value.param) == (code, "customer")
    assert local_stripe.portal_sessions == {}


# Idempotency -----------------------------------------------------------------------------------


async def test_an_idempotent_replay_returns_the_first_object(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    params: Any = {"email": "ada@example.com", "name": "Ada"}

    first = await client.v1.customers.create_async(params=params, options={"idempotency_key": "k1"})
    again = await client.v1.customers.create_async(params=params, options={"idempotency_key": "k1"})
    by_hand = await raw(
        local_stripe, "POST", "/v1/customers", data=params, headers={"Idempotency-Key": "k1"}
    )

    assert again.id == first.id
    assert by_hand.json()["id"] == first.id
    assert by_hand.headers["idempotent-replayed"] == "true"
    assert again.last_response is not None
    assert again.last_response.headers["idempotent-replayed"] == "true"
    assert again.last_response.headers["original-request"] == local_stripe.requests[0].request_id
    assert [r.replayed for r in local_stripe.requests] == [False, True, True]
    assert list(local_stripe.customers) == [first.id]


async def test_a_key_reused_with_other_params_is_an_idempotency_error(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    await client.v1.customers.create_async(
        params={"email": "ada@example.com"}, options={"idempotency_key": "k1"}
    )

    with pytest.raises(stripe.IdempotencyError) as caught:
        await client.v1.customers.create_async(
            params={"email": "bob@example.com"}, options={"idempotency_key": "k1"}
        )

    assert caught.value.http_status == 400
    assert caught.value.user_message is not None
    assert caught.value.user_message.startswith(
        "Keys for idempotent requests can only be used with the same parameters they were "
        "first used with."
    )
    assert len(local_stripe.customers) == 1


async def test_an_idempotency_key_expires_after_24_hours(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    params: Any = {"email": "ada@example.com"}
    first = await client.v1.customers.create_async(params=params, options={"idempotency_key": "k"})
    local_stripe.advance(23 * 3600)
    within = await client.v1.customers.create_async(params=params, options={"idempotency_key": "k"})
    local_stripe.advance(3600)
    after = await client.v1.customers.create_async(params=params, options={"idempotency_key": "k"})

    assert within.id == first.id
    assert after.id != first.id
    assert after.created >= first.created + 24 * 3600


async def test_a_failed_request_keeps_nothing_under_its_key(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.billing_portal.sessions.create_async(
            params={"customer": "cus_nope"}, options={"idempotency_key": "k"}
        )
    customer = await client.v1.customers.create_async(params={})

    portal = await client.v1.billing_portal.sessions.create_async(
        params={"customer": customer.id}, options={"idempotency_key": "k"}
    )

    assert portal.customer == customer.id


# Staged failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class", "type_and_code"),
    [
        (402, stripe.CardError, ("card_error", "card_declined")),
        (429, stripe.RateLimitError, ("invalid_request_error", "rate_limit")),
        (500, stripe.APIError, ("api_error", None)),
        (401, stripe.AuthenticationError, ("invalid_request_error", None)),
        (400, stripe.InvalidRequestError, ("invalid_request_error", None)),
    ],
)
async def test_a_staged_error_raises_the_sdks_error(
    local_stripe: LocalStripe,
    client: stripe.StripeClient,
    status: int,
    error_class: type[stripe.StripeError],
    type_and_code: tuple[str, str | None],
) -> None:
    local_stripe.fail_next(status)

    with pytest.raises(error_class) as caught:
        await client.v1.customers.create_async(params={"email": "ada@example.com"})
    after = await client.v1.customers.create_async(params={"email": "ada@example.com"})

    assert caught.value.http_status == status
    assert caught.value.error is not None
    assert (caught.value.error.type, caught.value.error.code) == type_and_code
    assert [r.status for r in local_stripe.requests] == [status, 200]
    assert list(local_stripe.customers) == [after.id]


async def test_a_staged_decline_carries_its_decline_code(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    local_stripe.fail_next(402)
    local_stripe.fail_next(
        402, decline_code="insufficient_funds", message="Your card has insufficient funds."
    )

    declines = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as caught:
            await client.v1.customers.create_async(params={})
        declines.append(caught.value)

    assert [d.code for d in declines] == ["card_declined", "card_declined"]
    assert [d.error.decline_code for d in declines if d.error] == [
        "generic_decline",
        "insufficient_funds",
    ]
    assert [d.user_message for d in declines] == [
        "Your card was declined.",
        "Your card has insufficient funds.",
    ]


async def test_a_staged_error_can_wait_for_its_path(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    local_stripe.fail_next(429, path="/v1/billing_portal/sessions", retry_after=7, times=2)

    customer = await client.v1.customers.create_async(params={})
    with pytest.raises(stripe.RateLimitError) as caught:
        await client.v1.billing_portal.sessions.create_async(params={"customer": customer.id})

    assert caught.value.headers is not None
    assert caught.value.headers["retry-after"] == "7"
    assert [r.status for r in local_stripe.requests] == [200, 429]


async def test_the_sdk_retries_a_staged_500_with_the_same_key(
    local_stripe: LocalStripe,
) -> None:
    local_stripe.fail_next(500)

    async with stripe_client(local_stripe, max_network_retries=1) as sdk:
        customer = await sdk.v1.customers.create_async(params={"email": "ada@example.com"})

    failed, retried = local_stripe.requests
    assert (failed.status, retried.status) == (500, 200)
    assert failed.idempotency_key is not None
    assert retried.idempotency_key == failed.idempotency_key
    assert list(local_stripe.customers) == [customer.id]


# Subscriptions ---------------------------------------------------------------------------------


async def test_completing_a_checkout_starts_the_subscription(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    customer_id, price, session_id = await subscription_session(local_stripe, client)

    events = local_stripe.complete_checkout(session_id)

    assert [e["type"] for e in events] == [
        "checkout.session.completed",
        "customer.subscription.created",
        "invoice.paid",
    ]
    completed, created, paid = (e["data"]["object"] for e in events)
    subscription_id = created["id"]
    assert (completed["status"], completed["payment_status"]) == ("complete", "paid")
    assert completed["subscription"] == subscription_id
    assert created["status"] == "active"
    assert created["metadata"] == {"user_id": "u_1"}
    assert created["latest_invoice"] == paid["id"]
    assert paid["parent"] == {
        "quote_details": None,
        "subscription_details": {"metadata": {"user_id": "u_1"}, "subscription": subscription_id},
        "type": "subscription_details",
    }
    assert (paid["status"], paid["amount_paid"], paid["customer"]) == ("paid", 1500, customer_id)
    session = await client.v1.checkout.sessions.retrieve_async(session_id)
    assert session.subscription == subscription_id
    subscription = await client.v1.subscriptions.retrieve_async(subscription_id)
    assert subscription.to_dict(for_json=True) == local_stripe.subscriptions[subscription_id]
    item = subscription["items"].data[0]
    assert (item.price.id, item.price.lookup_key, item.quantity) == (price, "pro_monthly", 1)
    assert item.price.recurring is not None
    assert (item.price.recurring.interval, item.price.recurring.interval_count) == ("month", 1)
    assert item.current_period_start == subscription.start_date
    assert 28 * 86400 <= item.current_period_end - item.current_period_start <= 31 * 86400


async def test_a_checkout_with_a_trial_starts_trialing(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    _, _, session_id = await subscription_session(local_stripe, client, trial_days=14)

    events = local_stripe.complete_checkout(session_id)

    subscription = events[1]["data"]["object"]
    assert subscription["status"] == "trialing"
    assert subscription["trial_end"] == subscription["trial_start"] + 14 * 86400
    assert subscription["items"]["data"][0]["current_period_end"] == subscription["trial_end"]
    assert events[2]["data"]["object"]["amount_paid"] == 0
    assert events[0]["data"]["object"]["payment_status"] == "no_payment_required"


async def test_a_completed_session_cannot_complete_again(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    _, _, session_id = await subscription_session(local_stripe, client)
    local_stripe.complete_checkout(session_id)

    with pytest.raises(ValueError, match="complete"):
        local_stripe.complete_checkout(session_id)
    with pytest.raises(KeyError):
        local_stripe.complete_checkout("cs_test_nope")
    assert len(local_stripe.subscriptions) == 1


async def test_subscriptions_list_like_stripe(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    customer_id, first = await subscribed(local_stripe, client)
    _, second = await subscribed(local_stripe, client)
    local_stripe.cancel_subscription(first)

    default = await client.v1.subscriptions.list_async()
    everything = await client.v1.subscriptions.list_async(params={"status": "all"})
    mine = await client.v1.subscriptions.list_async(
        params={"customer": customer_id, "status": "all"}
    )
    one = await client.v1.subscriptions.list_async(params={"status": "all", "limit": 1})

    assert default.object == "list"
    assert default.url == "/v1/subscriptions"
    assert [s.id for s in default.data] == [second]
    assert [s.id for s in everything.data] == [second, first]
    assert [s.id for s in mine.data] == [first]
    assert ([s.id for s in one.data], one.has_more, default.has_more) == ([second], True, False)


async def test_deleting_a_subscription_cancels_it(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    _, subscription_id = await subscribed(local_stripe, client)

    canceled = await client.v1.subscriptions.cancel_async(subscription_id)

    assert canceled.status == "canceled"
    assert canceled.ended_at == canceled.canceled_at == local_stripe.now()
    assert local_stripe.subscriptions[subscription_id]["status"] == "canceled"
    event = local_stripe.events[-1]
    assert event["type"] == "customer.subscription.deleted"
    assert event["request"]["id"] == local_stripe.requests[-1].request_id
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.subscriptions.cancel_async("sub_nope")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")


async def test_expand_replaces_ids_with_objects(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    customer_id, subscription_id = await subscribed(local_stripe, client)

    subscription = await client.v1.subscriptions.retrieve_async(
        subscription_id, params={"expand": ["customer", "latest_invoice"]}
    )

    assert subscription.customer.id == customer_id
    assert subscription.latest_invoice.object == "invoice"
    assert local_stripe.requests[-1].params["expand"] == ["customer", "latest_invoice"]


# Simulations -----------------------------------------------------------------------------------


async def test_update_subscription_reports_previous_attributes(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    _, subscription_id = await subscribed(local_stripe, client)
    team = local_stripe.add_price("price_team", unit_amount=5000)
    old_item = local_stripe.subscriptions[subscription_id]["items"]["data"][0]

    event = local_stripe.update_subscription(
        subscription_id, status="past_due", price=team, quantity=3
    )

    assert event["type"] == "customer.subscription.updated"
    assert set(event["data"]["previous_attributes"]) == {"status", "items"}
    assert event["data"]["previous_attributes"]["status"] == "active"
    old = event["data"]["previous_attributes"]["items"]["data"][0]
    assert (old["price"]["id"], old["quantity"]) == ("price_pro", 1)
    item = event["data"]["object"]["items"]["data"][0]
    assert (item["id"], item["price"]["id"], item["quantity"]) == (old_item["id"], team, 3)
    assert item["current_period_end"] == old_item["current_period_end"]
    retrieved = await client.v1.subscriptions.retrieve_async(subscription_id)
    assert (retrieved.status, retrieved["items"].data[0].quantity) == ("past_due", 3)


async def test_cancel_at_period_end_sets_cancel_at(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    _, subscription_id = await subscribed(local_stripe, client)

    event = local_stripe.update_subscription(subscription_id, cancel_at_period_end=True)

    subscription = event["data"]["object"]
    assert subscription["cancel_at_period_end"] is True
    assert subscription["cancel_at"] == subscription["items"]["data"][0]["current_period_end"]
    assert subscription["status"] == "active"
    assert event["data"]["previous_attributes"]["cancel_at_period_end"] is False
    assert event["data"]["previous_attributes"]["cancel_at"] is None


async def test_an_unknown_change_is_refused(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    _, subscription_id = await subscribed(local_stripe, client)

    with pytest.raises(TypeError, match="colour"):
        local_stripe.update_subscription(subscription_id, colour="red")


async def test_cancel_subscription_sends_deleted(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    _, subscription_id = await subscribed(local_stripe, client)
    local_stripe.advance(3600)

    event = local_stripe.cancel_subscription(subscription_id)

    assert event["type"] == "customer.subscription.deleted"
    assert "previous_attributes" not in event["data"]
    assert event["data"]["object"]["status"] == "canceled"
    assert event["data"]["object"]["ended_at"] == event["created"] == local_stripe.now()
    assert event["request"] == {"id": None, "idempotency_key": None}


async def test_a_failed_payment_makes_the_subscription_past_due(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    _, subscription_id = await subscribed(local_stripe, client)

    failed, updated = local_stripe.fail_payment(subscription_id)

    invoice = failed["data"]["object"]
    assert failed["type"] == "invoice.payment_failed"
    assert (invoice["status"], invoice["amount_due"], invoice["amount_paid"]) == ("open", 1500, 0)
    assert invoice["parent"]["subscription_details"]["subscription"] == subscription_id
    assert updated["type"] == "customer.subscription.updated"
    assert updated["data"]["object"]["status"] == "past_due"
    assert updated["data"]["object"]["latest_invoice"] == invoice["id"]
    assert updated["data"]["previous_attributes"]["status"] == "active"
    fetched = await client.v1.invoices.retrieve_async(invoice["id"])
    assert fetched.status == "open"


async def test_set_entitlements_sends_the_summary(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    customer = await client.v1.customers.create_async(params={})

    first = local_stripe.set_entitlements(customer.id, ["pro", "api"])
    second = local_stripe.set_entitlements(customer.id, ["pro"])
    listed = await client.v1.entitlements.active_entitlements.list_async(
        params={"customer": customer.id}
    )

    summary = first["data"]["object"]
    assert first["type"] == "entitlements.active_entitlement_summary.updated"
    assert summary["object"] == "entitlements.active_entitlement_summary"
    assert (summary["customer"], summary["livemode"]) == (customer.id, False)
    entitlements = summary["entitlements"]
    assert (entitlements["object"], entitlements["has_more"]) == ("list", False)
    assert [e["lookup_key"] for e in entitlements["data"]] == ["pro", "api"]
    pro = entitlements["data"][0]
    assert pro["id"].startswith("ent_")
    assert pro["feature"].startswith("feat_")
    assert pro["object"] == "entitlements.active_entitlement"
    assert second["data"]["object"]["entitlements"]["data"] == [pro]
    assert len(second["data"]["previous_attributes"]["entitlements"]["data"]) == 2
    assert [e.lookup_key for e in listed.data] == ["pro"]
    with pytest.raises(KeyError):
        local_stripe.set_entitlements("cus_nope", ["pro"])


async def test_advance_moves_the_clock(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    before = await client.v1.customers.create_async(params={})
    local_stripe.advance(10 * 86400)

    after = await client.v1.customers.create_async(params={})
    event = local_stripe.event("customer.created", local_stripe.customers[after.id])

    assert after.created - before.created >= 10 * 86400
    assert abs(local_stripe.now() - (time.time() + 10 * 86400)) <= 1
    assert event["created"] == local_stripe.now()


def test_an_event_has_stripes_snapshot_shape(local_stripe: LocalStripe) -> None:
    event = local_stripe.event(
        "customer.updated",
        {"id": "cus_1", "object": "customer"},
        previous_attributes={"email": None},
        created=1_700_000_000,
    )

    assert event["id"].startswith("evt_")
    assert event == {
        "id": event["id"],
        "object": "event",
        "api_version": stripe.api_version,
        "created": 1_700_000_000,
        "data": {
            "object": {"id": "cus_1", "object": "customer"},
            "previous_attributes": {"email": None},
        },
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "customer.updated",
    }


# Webhooks --------------------------------------------------------------------------------------


async def test_a_signed_event_verifies_with_the_sdk(
    local_stripe: LocalStripe, client: stripe.StripeClient
) -> None:
    _, subscription_id = await subscribed(local_stripe, client)
    event = local_stripe.cancel_subscription(subscription_id)

    body, headers = local_stripe.signed(event)

    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(body) == event
    assert stripe.WebhookSignature.verify_header(
        body, headers["Stripe-Signature"], local_stripe.webhook_secret
    )
    parsed = stripe.Webhook.construct_event(
        body, headers["Stripe-Signature"], local_stripe.webhook_secret
    )
    assert (parsed.id, parsed.type) == (event["id"], "customer.subscription.deleted")
    assert parsed.data.object["id"] == subscription_id


def test_a_wrong_secret_fails_verification(local_stripe: LocalStripe) -> None:
    body, headers = local_stripe.signed(local_stripe.event("ping", {"object": "ping"}))
    other_body, other = local_stripe.signed(b'{"x": 1}', secret="whsec_other")

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(body, headers["Stripe-Signature"], "whsec_other")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            other_body, other["Stripe-Signature"], local_stripe.webhook_secret
        )


def test_an_old_signature_is_outside_the_sdks_tolerance(local_stripe: LocalStripe) -> None:
    body, headers = local_stripe.signed(
        local_stripe.event("ping", {"object": "ping"}), timestamp=int(time.time()) - 600
    )

    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.WebhookSignature.verify_header(
            body, headers["Stripe-Signature"], local_stripe.webhook_secret, tolerance=300
        )


def test_sign_stripe_webhook_matches_the_sdks_signature() -> None:
    payload = '{"id": "evt_1", "note": "café"}'

    ours = sign_stripe_webhook(payload.encode(), "whsec_test", timestamp=1_700_000_000)
    theirs = stripe.WebhookSignature.generate_signature_header(
        payload, "whsec_test", timestamp=1_700_000_000
    )

    assert ours == theirs
    assert ours.startswith("t=1700000000,v1=")
    assert sign_stripe_webhook(payload, "whsec_test", timestamp=1_700_000_000) == ours
