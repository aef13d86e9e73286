"""Checkout to cancellation, through the endpoints, the local Stripe and real PostgreSQL."""

from __future__ import annotations

from omnistack_core.billing import billing_customers
from omnistack_core.testing.stripe_server import LocalStripe
from tests.billing.billing_apps import auth_headers, billing_app, count_rows, deliver, running


async def test_checkout_webhooks_and_cancellation_drive_access(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    app = billing_app(local_stripe, database_url=postgres_url)
    ada = auth_headers("user-ada", "ada@example.com")

    async with running(app) as client:
        before = await client.get("/api/v1/billing/subscription", headers=ada)
        refused = await client.get("/reports", headers=ada)
        checkout = await client.post("/api/v1/billing/checkout", json={"plan": "pro"}, headers=ada)
        session_id = checkout.json()["id"]
        completed, created, paid = local_stripe.complete_checkout(session_id)
        answers = [await deliver(client, local_stripe, e) for e in (completed, created, paid)]
        during = await client.get("/api/v1/billing/subscription", headers=ada)
        allowed = await client.get("/reports", headers=ada)
        not_team = await client.get("/team-only", headers=ada)
        subscription_id = during.json()["subscription"]["id"]
        local_stripe.advance(60)
        canceled = await deliver(
            client, local_stripe, local_stripe.cancel_subscription(subscription_id)
        )
        after = await client.get("/api/v1/billing/subscription", headers=ada)
        refused_after = await client.get("/reports", headers=ada)

    assert before.json() == {"active": False, "plan": None, "subscription": None, "features": []}
    assert refused.status_code == 402
    assert checkout.status_code == 200
    assert checkout.json()["url"] == local_stripe.checkout_sessions[session_id]["url"]
    session = local_stripe.checkout_sessions[session_id]
    assert session["client_reference_id"] == "user-ada"
    (create,) = [r for r in local_stripe.requests if r.path == "/v1/checkout/sessions"]
    assert create.params["subscription_data"]["trial_period_days"] == "14"
    assert create.params["line_items"] == [
        {"price": create.params["line_items"][0]["price"], "quantity": "1"}
    ]
    assert [a.json() for a in answers] == [{"status": "processed"}] * 3
    state = during.json()
    assert state["active"] is True
    assert state["plan"] == "pro"
    assert state["subscription"]["status"] == "trialing"
    assert state["subscription"]["trial_end"] is not None
    assert allowed.json() == {"plan": "pro", "status": "trialing"}
    assert not_team.status_code == 402
    assert not_team.json()["plans"] == ["team"]
    assert canceled.json() == {"status": "processed"}
    assert after.json()["active"] is False
    assert after.json()["subscription"]["status"] == "canceled"
    assert refused_after.status_code == 402
    assert refused_after.headers["content-type"] == "application/problem+json"
    problem = refused_after.json()
    assert problem["plans"] == ["pro", "team"]
    assert problem["checkout"] == "/api/v1/billing/checkout"
    assert problem["detail"] == (
        "This needs an active subscription to one of the plans 'pro', 'team'. "
        "Buy a plan with POST /api/v1/billing/checkout."
    )


async def test_one_stripe_customer_per_user_is_created_and_reused(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    app = billing_app(local_stripe, database_url=postgres_url)
    ada = auth_headers("user-ada", "ada@example.com")

    async with running(app) as client:
        first = await client.post("/api/v1/billing/checkout", json={"plan": "pro"}, headers=ada)
        second = await client.post("/api/v1/billing/checkout", json={"plan": "team"}, headers=ada)
        rows = await count_rows(app, billing_customers)

    sessions = local_stripe.checkout_sessions
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] != second.json()["id"]
    assert len(local_stripe.customers) == 1
    customer = next(iter(local_stripe.customers.values()))
    assert customer["email"] == "ada@example.com"
    assert customer["metadata"] == {"user_id": "user-ada"}
    assert {s["customer"] for s in sessions.values()} == {customer["id"]}
    assert rows == 1
    creates = [r for r in local_stripe.requests if r.method == "POST"]
    assert all(r.headers.get("idempotency-key", "").startswith("omnistack-") for r in creates)


async def test_a_subscribed_user_is_sent_to_the_portal_instead_of_checkout(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    app = billing_app(local_stripe, database_url=postgres_url)
    ada = auth_headers("user-ada")

    async with running(app) as client:
        no_account = await client.post("/api/v1/billing/portal", headers=ada)
        checkout = await client.post("/api/v1/billing/checkout", json={"plan": "team"}, headers=ada)
        for event in local_stripe.complete_checkout(checkout.json()["id"]):
            await deliver(client, local_stripe, event)
        again = await client.post("/api/v1/billing/checkout", json={"plan": "pro"}, headers=ada)
        portal = await client.post("/api/v1/billing/portal", headers=ada)

    assert no_account.status_code == 409
    assert again.status_code == 409
    assert "portal" in again.json()["detail"]
    assert portal.status_code == 200
    (portal_session,) = local_stripe.portal_sessions.values()
    assert portal.json() == {"url": portal_session["url"]}
    assert portal_session["return_url"] == "https://app.example.com/billing/done"


async def test_checkout_validates_the_request(postgres_url: str, local_stripe: LocalStripe) -> None:
    app = billing_app(local_stripe, database_url=postgres_url)
    ada = auth_headers("user-ada")

    async with running(app) as client:
        anonymous = await client.post("/api/v1/billing/checkout", json={"plan": "pro"})
        unknown = await client.post("/api/v1/billing/checkout", json={"plan": "gold"}, headers=ada)
        zero = await client.post(
            "/api/v1/billing/checkout", json={"plan": "pro", "quantity": 0}, headers=ada
        )

    assert anonymous.status_code == 401
    assert unknown.status_code == 422
    assert unknown.json()["plans"] == ["pro", "team"]
    assert zero.status_code == 422
    assert local_stripe.customers == {}
    assert local_stripe.checkout_sessions == {}


async def test_the_embedded_database_runs_the_same_flow(local_stripe: LocalStripe) -> None:
    # Development with no DATABASE_URL: SQLite in the working directory.
    app = billing_app(local_stripe, environment="development")
    ada = auth_headers("user-ada")

    async with running(app) as client:
        checkout = await client.post("/api/v1/billing/checkout", json={"plan": "team"}, headers=ada)
        events = local_stripe.complete_checkout(checkout.json()["id"])
        answers = [await deliver(client, local_stripe, event) for event in events]
        duplicate = await deliver(client, local_stripe, events[1])
        allowed = await client.get("/team-only", headers=ada)

    assert [a.json()["status"] for a in answers] == ["processed"] * 3
    assert duplicate.json() == {"status": "duplicate"}
    assert allowed.json() == {"plan": "team"}
