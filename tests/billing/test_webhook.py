"""The webhook: refused unless signed and fresh, applied once, in order, retried on failure."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omnistack_core.billing import (
    BillingModule,
    StripeEvent,
    billing_events,
    billing_subscriptions,
)
from omnistack_core.testing.stripe_server import LocalStripe, sign_stripe_webhook
from tests.billing.billing_apps import auth_headers, billing_app, count_rows, deliver, running


async def subscribed(client: Any, stripe: LocalStripe, plan: str = "team") -> str:
    """Check out as ``user-ada`` and complete it in Stripe; returns the subscription id
    (the events are not delivered)."""
    checkout = await client.post(
        "/api/v1/billing/checkout", json={"plan": plan}, headers=auth_headers("user-ada")
    )
    stripe.complete_checkout(checkout.json()["id"])
    (subscription_id,) = stripe.subscriptions
    return subscription_id


def subscription_event(stripe: LocalStripe, subscription_id: str, **changes: Any) -> dict[str, Any]:
    stripe.advance(5)
    return stripe.update_subscription(subscription_id, **changes)


async def stored_subscription(app: Any, subscription_id: str) -> Any:
    async with app.state.database.session() as session:
        table = billing_subscriptions
        return (await session.execute(select(table).where(table.c.id == subscription_id))).one()


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda s, e: s.signed(e, secret="whsec_not_the_endpoints_secret"), id="bad"),
        pytest.param(lambda s, e: s.signed(e, timestamp=int(time.time()) - 600), id="10-min-old"),
        pytest.param(lambda s, e: s.signed(e, timestamp=int(time.time()) + 600), id="10-min-ahead"),
        pytest.param(
            lambda s, e: (
                json.dumps({**e, "type": "customer.subscription.deleted"}).encode(),
                s.signed(e)[1],
            ),
            id="other-body",
        ),
        pytest.param(
            lambda s, e: (s.signed(e)[0], {"Content-Type": "application/json"}), id="no-header"
        ),
        pytest.param(
            lambda s, e: (s.signed(e)[0], {"Stripe-Signature": "garbage"}), id="malformed-header"
        ),
        pytest.param(
            lambda s, e: (
                b'{"id": "evt_1", "object": "event"',
                {
                    "Stripe-Signature": sign_stripe_webhook(
                        b'{"id": "evt_1", "object": "event"', s.webhook_secret
                    )
                },
            ),
            id="malformed-json",
        ),
        pytest.param(
            lambda s, e: (
                b'{"object": "list"}',
                {"Stripe-Signature": sign_stripe_webhook(b'{"object": "list"}', s.webhook_secret)},
            ),
            id="not-an-event",
        ),
    ],
)
async def test_unverifiable_deliveries_get_400_and_store_nothing(
    postgres_url: str, local_stripe: LocalStripe, forge: Any
) -> None:
    app = billing_app(local_stripe, database_url=postgres_url)

    async with running(app) as client:
        subscription_id = await subscribed(client, local_stripe)
        event = subscription_event(local_stripe, subscription_id, status="past_due")
        body, headers = forge(local_stripe, event)
        response = await client.post("/api/v1/billing/webhook", content=body, headers=headers)
        events = await count_rows(app, billing_events)
        subscriptions = await count_rows(app, billing_subscriptions)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "The webhook could not be verified."
    assert (events, subscriptions) == (0, 0)


async def test_a_rotated_secret_and_the_new_one_are_both_accepted(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    old, new = local_stripe.webhook_secret, "whsec_the_new_secret_after_rotation"
    app = billing_app(local_stripe, database_url=postgres_url, stripe_webhook_secret=f"{new},{old}")

    async with running(app) as client:
        subscription_id = await subscribed(client, local_stripe)
        with_old = await deliver(
            client, local_stripe, subscription_event(local_stripe, subscription_id, quantity=2)
        )
        with_new = await deliver(
            client,
            local_stripe,
            subscription_event(local_stripe, subscription_id, quantity=3),
            secret=new,
        )

    assert with_old.json() == with_new.json() == {"status": "processed"}


async def test_an_event_delivered_twice_is_applied_once(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    calls: list[str] = []
    module = BillingModule()

    @module.on("customer.subscription.updated")
    async def count(event: StripeEvent, session: AsyncSession) -> None:
        calls.append(event.id)

    app = billing_app(local_stripe, database_url=postgres_url, module=module)

    async with running(app) as client:
        subscription_id = await subscribed(client, local_stripe)
        event = subscription_event(local_stripe, subscription_id, cancel_at_period_end=True)
        first = await deliver(client, local_stripe, event)
        second = await deliver(client, local_stripe, event)
        row = await stored_subscription(app, subscription_id)

    assert first.status_code == second.status_code == 200
    assert [first.json()["status"], second.json()["status"]] == ["processed", "duplicate"]
    assert calls == [event["id"]]
    assert row.cancel_at_period_end is True


async def test_ten_concurrent_deliveries_apply_once_and_all_get_2xx(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    calls: list[str] = []
    module = BillingModule()

    @module.on("*")
    async def slow(event: StripeEvent, session: AsyncSession) -> None:
        await asyncio.sleep(0.2)  # holds the first transaction open while the others arrive
        calls.append(event.id)

    app = billing_app(local_stripe, database_url=postgres_url, module=module, db_pool_size=12)

    async with running(app) as client:
        subscription_id = await subscribed(client, local_stripe)
        event = subscription_event(local_stripe, subscription_id, quantity=7)
        responses = await asyncio.gather(*(deliver(client, local_stripe, event) for _ in range(10)))
        row = await stored_subscription(app, subscription_id)
        async with app.state.database.session() as session:
            attempts = await session.scalar(
                select(billing_events.c.attempts).where(billing_events.c.id == event["id"])
            )

    assert all(r.status_code == 200 for r in responses)
    assert sorted(r.json()["status"] for r in responses) == ["duplicate"] * 9 + ["processed"]
    assert calls == [event["id"]]
    assert row.quantity == 7
    assert attempts == 1


async def test_updates_delivered_newest_first_leave_the_newest_state(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    app = billing_app(local_stripe, database_url=postgres_url)

    async with running(app) as client:
        subscription_id = await subscribed(client, local_stripe)
        updates = [
            subscription_event(local_stripe, subscription_id, quantity=quantity)
            for quantity in (2, 3, 4)
        ]
        answers = [await deliver(client, local_stripe, e) for e in reversed(updates)]
        row = await stored_subscription(app, subscription_id)

    assert [a.json()["status"] for a in answers] == ["processed"] * 3
    assert row.quantity == 4
    assert row.event_created == updates[-1]["created"]


async def test_events_of_the_same_second_are_settled_by_asking_stripe(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    app = billing_app(local_stripe, database_url=postgres_url)

    async with running(app) as client:
        subscription_id = await subscribed(client, local_stripe)
        first = subscription_event(local_stripe, subscription_id, quantity=2)
        second = subscription_event(local_stripe, subscription_id, quantity=5)
        first["created"] = second["created"]  # Stripe's times are whole seconds
        await deliver(client, local_stripe, second)
        retrievals = sum(r.method == "GET" for r in local_stripe.requests)
        await deliver(client, local_stripe, first)  # older, same second: Stripe decides
        row = await stored_subscription(app, subscription_id)

    assert sum(r.method == "GET" for r in local_stripe.requests) == retrievals + 1
    assert row.quantity == 5


async def test_a_failing_handler_answers_500_records_the_error_and_a_redelivery_succeeds(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    broken = True
    module = BillingModule()

    @module.on("customer.subscription.updated")
    async def flaky(event: StripeEvent, session: AsyncSession) -> None:
        if broken:
            raise RuntimeError("the warehouse is closed")

    app = billing_app(local_stripe, database_url=postgres_url, module=module)

    async with running(app) as client:
        subscription_id = await subscribed(client, local_stripe)
        event = subscription_event(local_stripe, subscription_id, quantity=9)
        failures = [await deliver(client, local_stripe, event) for _ in range(2)]
        async with app.state.database.session() as session:
            failed = (
                await session.execute(
                    select(billing_events).where(billing_events.c.id == event["id"])
                )
            ).one()
        rolled_back = await count_rows(app, billing_subscriptions)
        broken = False
        retried = await deliver(client, local_stripe, event)
        row = await stored_subscription(app, subscription_id)
        async with app.state.database.session() as session:
            done = (
                await session.execute(
                    select(billing_events).where(billing_events.c.id == event["id"])
                )
            ).one()

    assert [f.status_code for f in failures] == [500, 500]
    assert failures[0].headers["content-type"] == "application/problem+json"
    assert "warehouse" not in failures[0].text
    assert failed.processed_at is None
    assert failed.attempts == 2
    assert failed.last_error == "RuntimeError: the warehouse is closed"
    assert failed.payload["id"] == event["id"]
    assert rolled_back == 0  # the subscription write rolled back with the handler
    assert retried.json() == {"status": "processed"}
    assert row.quantity == 9
    assert done.processed_at is not None
    assert done.attempts == 3
    assert done.last_error is None


async def test_replay_processes_the_events_that_failed(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    broken = True
    module = BillingModule()

    @module.on("customer.subscription.updated")
    async def flaky(event: StripeEvent, session: AsyncSession) -> None:
        if broken:
            raise RuntimeError("down")

    app = billing_app(local_stripe, database_url=postgres_url, module=module)

    async with running(app) as client:
        subscription_id = await subscribed(client, local_stripe)
        for quantity in (2, 3):
            await deliver(
                client,
                local_stripe,
                subscription_event(local_stripe, subscription_id, quantity=quantity),
            )
        still_broken = await BillingModule.webhooks(app).replay_failed()
        broken = False
        fixed = await BillingModule.webhooks(app).replay_failed()
        nothing_left = await BillingModule.webhooks(app).replay_failed()
        row = await stored_subscription(app, subscription_id)

    assert still_broken == (0, 2)
    assert fixed == (2, 0)
    assert nothing_left == (0, 0)
    assert row.quantity == 3


async def test_a_body_over_the_limit_gets_413_unread(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    app = billing_app(local_stripe, database_url=postgres_url, billing_webhook_max_bytes=4096)
    body = json.dumps({"padding": "x" * 5000}).encode()

    async with running(app) as client:
        response = await client.post(
            "/api/v1/billing/webhook",
            content=body,
            headers={"Stripe-Signature": sign_stripe_webhook(body, local_stripe.webhook_secret)},
        )
        events = await count_rows(app, billing_events)

    assert response.status_code == 413
    assert events == 0


async def test_deliveries_are_counted_by_type_and_outcome(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    app = billing_app(local_stripe, database_url=postgres_url)

    async with running(app) as client:
        subscription_id = await subscribed(client, local_stripe)
        event = subscription_event(local_stripe, subscription_id, quantity=2)
        before = await client.get("/api/v1/public/metrics")
        await deliver(client, local_stripe, event)
        await deliver(client, local_stripe, event)
        await deliver(client, local_stripe, event, secret="whsec_wrong_secret_value")
        after = await client.get("/api/v1/public/metrics")

    def count(text: str, event_type: str, outcome: str) -> float:
        for line in text.splitlines():
            if (
                line.startswith("stripe_webhook_events_total{")
                and f'type="{event_type}"' in line
                and f'outcome="{outcome}"' in line
            ):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    for labels in (
        ("customer.subscription.updated", "processed"),
        ("customer.subscription.updated", "duplicate"),
        ("unverified", "refused"),
    ):
        assert count(after.text, *labels) - count(before.text, *labels) == 1, labels
