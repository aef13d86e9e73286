"""Signed events whose values do not fit the columns: never a database error, on PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from omnistack_core.billing import billing_customers, billing_events, billing_subscriptions
from omnistack_core.testing.stripe_server import LocalStripe
from tests.billing.billing_apps import billing_app, count_rows, deliver, running


async def test_a_checkout_for_a_user_id_too_long_to_store_links_nobody(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    app = billing_app(local_stripe, database_url=postgres_url)
    session = {
        "id": "cs_test_long",
        "object": "checkout.session",
        "mode": "subscription",
        "customer": "cus_long",
        "client_reference_id": "u" * 400,
        "customer_details": {"email": "x" * 400 + "@example.com"},
    }

    async with running(app) as client:
        response = await deliver(
            client, local_stripe, local_stripe.event("checkout.session.completed", session)
        )
        customers = await count_rows(app, billing_customers)

    assert response.status_code == 200
    assert response.json() == {"status": "processed"}
    assert customers == 0


async def test_an_email_too_long_to_store_is_left_out_of_the_link(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    app = billing_app(local_stripe, database_url=postgres_url)
    session = {
        "id": "cs_test_email",
        "object": "checkout.session",
        "mode": "subscription",
        "customer": "cus_email",
        "client_reference_id": "user-ada",
        "customer_details": {"email": "x" * 400 + "@example.com"},
    }

    async with running(app) as client:
        response = await deliver(
            client, local_stripe, local_stripe.event("checkout.session.completed", session)
        )
        async with app.state.database.session() as db:
            row = (await db.execute(select(billing_customers))).one()

    assert response.status_code == 200
    assert (row.user_id, row.customer_id, row.email) == ("user-ada", "cus_email", None)


async def test_a_subscription_whose_ids_do_not_fit_is_recorded_as_failed_by_name(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    app = billing_app(local_stripe, database_url=postgres_url)
    subscription = {
        "id": "sub_long",
        "object": "subscription",
        "customer": "cus_" + "x" * 300,
        "status": "active",
        "items": {"object": "list", "data": []},
    }
    event = local_stripe.event("customer.subscription.updated", subscription)

    async with running(app) as client:
        response = await deliver(client, local_stripe, event)
        async with app.state.database.session() as db:
            failed = (
                await db.execute(select(billing_events).where(billing_events.c.id == event["id"]))
            ).one()
        stored = await count_rows(app, billing_subscriptions)

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert failed.processed_at is None
    assert (
        failed.last_error
        == "ValueError: the customer's id does not fit its column (304 characters)"
    )
    assert stored == 0


async def test_an_event_whose_type_holds_nul_is_refused_with_400(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    app = billing_app(local_stripe, database_url=postgres_url)
    event = local_stripe.event("invoice.paid\u0000", {"id": "in_1", "object": "invoice"})

    async with running(app) as client:
        response = await deliver(client, local_stripe, event)
        events = await count_rows(app, billing_events)

    assert response.status_code == 400
    assert events == 0
