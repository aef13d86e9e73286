"""The billing pages: events by filter, one event, replay; a user's account and re-sync."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from omnistack_core.auth import AuthModule, auth_metadata, mint_dev_token
from omnistack_core.billing import BillingModule, StripeEvent, billing_metadata
from omnistack_core.testing import app_client
from omnistack_core.testing.stripe_server import LocalStripe
from tests.console.service import SECRET_KEY, billing_values, console_app, create_tables
from tests.console.test_access import LOCAL, csrf_of, sign_in

BROKEN = {"on": True}


def billing_console(stripe: LocalStripe, database_url: str) -> FastAPI:
    module = BillingModule()

    @module.on("customer.subscription.updated")
    async def warehouse(event: StripeEvent, session: AsyncSession) -> None:
        if BROKEN["on"]:
            raise RuntimeError("the warehouse for ada@example.com is closed")

    return console_app([AuthModule(), module], database_url=database_url, **billing_values(stripe))


@pytest.fixture
async def running(
    local_stripe: LocalStripe, empty_postgres_url: str
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    BROKEN["on"] = True
    app = billing_console(local_stripe, empty_postgres_url)
    async with app_client(app, base_url=LOCAL) as client:
        await create_tables(app, auth_metadata, billing_metadata)
        yield app, client


async def failed_event(client: httpx.AsyncClient, stripe: LocalStripe) -> tuple[str, str]:
    """Ada subscribes; an update to her subscription fails in the app's handler."""
    token = mint_dev_token(SECRET_KEY, "user-ada", email="ada@example.com")
    checkout = await client.post(
        "/api/v1/billing/checkout",
        json={"plan": "team"},
        headers={"Authorization": f"Bearer {token}"},
    )
    stripe.complete_checkout(checkout.json()["id"])
    (subscription_id,) = stripe.subscriptions
    stripe.advance(5)
    event = stripe.update_subscription(subscription_id, quantity=2)
    body, headers = stripe.signed(event)
    response = await client.post("/api/v1/billing/webhook", content=body, headers=headers)
    assert response.status_code == 500
    return event["id"], subscription_id


def event_ids(page: httpx.Response) -> list[str]:
    return re.findall(r'<code class="event-id">([^<]+)</code>', page.text)


async def test_events_filter_by_outcome_and_type_and_a_failed_one_replays(
    running: tuple[FastAPI, httpx.AsyncClient], local_stripe: LocalStripe
) -> None:
    _, client = running
    event_id, _ = await failed_event(client, local_stripe)
    await sign_in(client)

    failed = await client.get("/console/billing", params={"outcome": "failed"})
    assert event_ids(failed) == [event_id]
    typed = await client.get("/console/billing", params={"type": "customer.subscription.updated"})
    assert event_ids(typed) == [event_id]
    assert event_ids(await client.get("/console/billing", params={"type": "invoice.paid"})) == []

    page = await client.get(f"/console/billing/events/{event_id}")
    assert "RuntimeError: the warehouse for a***@example.com is closed" in page.text
    assert "ada@example.com" not in page.text
    assert "Replay this event" in page.text

    BROKEN["on"] = False
    done = await client.post(
        f"/console/billing/events/{event_id}/replay", data={"csrf_token": csrf_of(page)}
    )
    shown = await client.get(done.headers["location"])
    assert "The event was processed." in shown.text
    assert "Replay this event" not in shown.text
    assert event_ids(await client.get("/console/billing", params={"outcome": "failed"})) == []
    assert event_ids(await client.get("/console/billing", params={"outcome": "processed"}))


async def test_replay_failed_runs_them_all_and_says_how_it_went(
    running: tuple[FastAPI, httpx.AsyncClient], local_stripe: LocalStripe
) -> None:
    _, client = running
    await failed_event(client, local_stripe)
    await sign_in(client)
    token = csrf_of(await client.get("/console/billing"))
    still = await client.post("/console/billing/replay-failed", data={"csrf_token": token})
    assert "0 processed, 1 failed again" in (await client.get(still.headers["location"])).text
    BROKEN["on"] = False
    fixed = await client.post("/console/billing/replay-failed", data={"csrf_token": token})
    assert "1 processed, 0 failed again" in (await client.get(fixed.headers["location"])).text
    assert (await client.post("/console/billing/replay-failed", data={})).status_code == 403


async def test_events_page_by_key_with_a_date_filter(
    running: tuple[FastAPI, httpx.AsyncClient], local_stripe: LocalStripe
) -> None:
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    from sqlalchemy import insert  # noqa: PLC0415

    from omnistack_core.billing import billing_events  # noqa: PLC0415

    app, client = running
    day = datetime(2026, 11, 30, 12, tzinfo=UTC)
    rows: list[dict[str, Any]] = [
        {
            "id": f"evt_{n:03}",
            "type": "invoice.paid",
            "created": 1,
            "received_at": day + timedelta(hours=n),
            "processed_at": day,
            "attempts": 1,
            "last_error": None,
            "payload": {},
        }
        for n in range(120)
    ]
    async with app.state.database.session() as session:
        await session.execute(insert(billing_events), rows)
    await sign_in(client)
    seen: list[str] = []
    url = "/console/billing?since=2026-12-01&until=2026-12-02"
    while url:
        page = await client.get(url)
        seen += event_ids(page)
        found = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        url = found.group(1).replace("&amp;", "&") if found else ""
    # 2026-12-01 00:00 is hour 12, 2026-12-02 23:00 is hour 59.
    assert seen == [f"evt_{n:03}" for n in reversed(range(12, 60))]


async def test_a_users_account_and_a_resync_from_stripe(
    running: tuple[FastAPI, httpx.AsyncClient], local_stripe: LocalStripe
) -> None:
    _, client = running
    _, subscription_id = await failed_event(client, local_stripe)
    await sign_in(client)
    unknown = await client.get("/console/billing/users", params={"user_id": "user-nobody"})
    assert "never started a checkout" in unknown.text
    page = await client.get("/console/billing/users", params={"user_id": "user-ada"})
    assert "a***@example.com" in page.text
    assert subscription_id not in page.text  # the subscription's events never applied
    done = await client.post(
        "/console/billing/users/sync", data={"csrf_token": csrf_of(page), "user_id": "user-ada"}
    )
    synced = await client.get(done.headers["location"])
    assert "1 subscription(s) corrected" in synced.text
    assert subscription_id in synced.text
