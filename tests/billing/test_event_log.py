"""Stored events for operators: pages by filter, one event, replaying one; a user's account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from omnistack_core.billing import BillingModule, StripeEvent, billing_events
from omnistack_core.testing.stripe_server import LocalStripe
from tests.billing.billing_apps import billing_app, deliver, running
from tests.billing.test_webhook import subscribed, subscription_event

START = datetime(2026, 12, 1, tzinfo=UTC)


async def store_events(app: Any, count: int) -> None:
    rows = [
        {
            "id": f"evt_{number:03}",
            "type": "invoice.paid" if number % 3 == 0 else "customer.subscription.updated",
            "created": 1_700_000_000 + number,
            # Pairs share an instant: the cursor must step through ties by id.
            "received_at": START + timedelta(seconds=number // 2),
            "processed_at": None if number % 4 == 0 else START,
            "attempts": 1,
            "last_error": "RuntimeError: down" if number % 4 == 0 else None,
            "payload": {"id": f"evt_{number:03}"},
        }
        for number in range(count)
    ]
    async with app.state.database.session() as session:
        await session.execute(insert(billing_events), rows)


async def every_page(app: Any, **filters: Any) -> list[str]:
    webhooks = BillingModule.webhooks(app)
    seen: list[str] = []
    after = None
    while page := await webhooks.events(after=after, limit=4, **filters):
        assert all(event.payload is None for event in page)
        seen += [event.id for event in page]
        after = page[-1].cursor
    return seen


async def test_pages_run_newest_first_through_ties_and_filters(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    app = billing_app(local_stripe, database_url=postgres_url)
    async with running(app):
        await store_events(app, 30)
        everything = await every_page(app)
        invoices = await every_page(app, event_type="invoice.paid")
        failed = await every_page(app, outcome="failed")
        processed = await every_page(app, outcome="processed")
        window = await every_page(
            app, since=START + timedelta(seconds=5), until=START + timedelta(seconds=7)
        )
        one = await BillingModule.webhooks(app).event("evt_004")
        none = await BillingModule.webhooks(app).event("evt_999")

    assert everything == [f"evt_{number:03}" for number in reversed(range(30))]
    assert invoices == [f"evt_{number:03}" for number in reversed(range(0, 30, 3))]
    assert failed == [f"evt_{number:03}" for number in reversed(range(0, 30, 4))]
    assert len(processed) + len(failed) == 30
    assert window == ["evt_013", "evt_012", "evt_011", "evt_010"]
    assert one is not None
    assert (one.outcome, one.payload, one.last_error) == (
        "failed",
        {"id": "evt_004"},
        "RuntimeError: down",
    )
    assert none is None


async def test_replay_runs_one_failed_event_again(
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
        event = subscription_event(local_stripe, subscription_id, quantity=2)
        await deliver(client, local_stripe, event)
        webhooks = BillingModule.webhooks(app)
        before = await webhooks.event(event["id"])
        broken = False
        outcome = await webhooks.replay(event["id"])
        again = await webhooks.replay(event["id"])
        missing = await webhooks.replay("evt_nope")
        after = await webhooks.event(event["id"])

    assert before is not None
    assert before.outcome == "failed"
    assert (outcome, again, missing) == ("processed", "duplicate", None)
    assert after is not None
    assert after.outcome == "processed"
    assert after.attempts == 2


async def test_an_account_shows_what_is_stored_and_sync_user_corrects_it(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    app = billing_app(local_stripe, database_url=postgres_url)
    async with running(app) as client:
        subscription_id = await subscribed(client, local_stripe)
        billing = BillingModule.of(app)
        nobody = await billing.account("user-nobody")
        before = await billing.account("user-ada")
        report = await billing.sync_user("user-ada")
        after = await billing.account("user-ada")
        again = await billing.sync_user("user-ada")

    assert nobody is None
    assert before is not None
    assert before.subscriptions == ()
    assert (report.customers, report.subscriptions, report.corrected) == (1, 1, 1)
    assert after is not None
    assert [s.id for s in after.subscriptions] == [subscription_id]
    assert after.subscriptions[0].plan == "team"
    assert again.corrected == 0
