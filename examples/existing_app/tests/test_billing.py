"""Billing under the app's own prefix: Checkout, Stripe's signed webhook, the gated route."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import stripe

from examples.existing_app.tests.notes_app import PREFIX, Notes
from omnistack_core.testing import LocalStripe

OTHER_SECRET = "whsec_someone_else_0123456789"


@pytest.fixture
async def stripe_client(local_stripe: LocalStripe) -> AsyncIterator[stripe.StripeClient]:
    """Stripe's official SDK, pointed at the local Stripe as the module's own is."""
    http_client = stripe.HTTPXClient()
    yield stripe.StripeClient(
        local_stripe.api_key, base_addresses={"api": local_stripe.url}, http_client=http_client
    )
    # The SDK leaves this method unannotated.
    await http_client.close_async()  # type: ignore[no-untyped-call]


async def test_the_export_needs_the_pro_plan_bought_at_the_apps_checkout_path(
    notes: Notes, stripe_client: stripe.StripeClient
) -> None:
    user = notes.headers(f"user-{uuid.uuid4().hex[:12]}")
    await notes.client.post("/notes", json={"text": "Ship it."}, headers=user)

    refused = await notes.client.get("/notes/export", headers=user)
    checkout = await notes.client.post(
        f"{PREFIX}/billing/checkout", json={"plan": "pro"}, headers=user
    )
    session = await stripe_client.v1.checkout.sessions.retrieve_async(checkout.json()["id"])
    events = notes.stripe.complete_checkout(session.id)
    delivered = [await notes.deliver(event) for event in events]
    state = await notes.client.get(f"{PREFIX}/billing/subscription", headers=user)
    allowed = await notes.client.get("/notes/export", headers=user)

    assert refused.status_code == 402
    assert refused.json() == {
        "detail": "This needs an active subscription to the 'pro' plan. "
        "Buy a plan with POST /omnistack/billing/checkout."
    }
    assert checkout.status_code == 200, checkout.text
    assert checkout.json()["url"] == session.url
    assert (session.mode, session.status) == ("subscription", "open")
    assert session.success_url == "https://notes.example.com/account"
    assert [event["type"] for event in events] == [
        "checkout.session.completed",
        "customer.subscription.created",
        "invoice.paid",
    ]
    assert [answer.json() for answer in delivered] == [{"status": "processed"}] * 3
    assert (state.json()["active"], state.json()["plan"]) == (True, "pro")
    assert allowed.status_code == 200, allowed.text
    assert allowed.json() == {"notes": ["Ship it."]}


async def test_a_webhook_signed_with_another_secret_is_refused_and_changes_nothing(
    notes: Notes,
) -> None:
    user = notes.headers(f"user-{uuid.uuid4().hex[:12]}")
    checkout = await notes.client.post(
        f"{PREFIX}/billing/checkout", json={"plan": "pro"}, headers=user
    )
    events = notes.stripe.complete_checkout(checkout.json()["id"])
    body, headers = notes.stripe.signed(events[1], secret=OTHER_SECRET)

    refused = await notes.client.post(f"{PREFIX}/billing/webhook", content=body, headers=headers)
    export = await notes.client.get("/notes/export", headers=user)

    assert refused.status_code == 400
    assert refused.json() == {"detail": "The webhook could not be verified."}
    assert export.status_code == 402
