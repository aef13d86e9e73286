"""`omnistack billing sync` and `replay`, run against a service's app as operators run them."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from omnistack_core.billing import billing_events, billing_subscriptions
from omnistack_core.cli import main
from omnistack_core.testing.stripe_server import LocalStripe
from tests.billing.billing_apps import SECRET_KEY, auth_headers, billing_app, deliver, running

APP_MODULE = """
from omnistack_core import create_app
from omnistack_core.auth import AuthModule
from omnistack_core.billing import BillingModule

app = create_app(modules=[AuthModule(), BillingModule()])
"""


@pytest.fixture
def service(
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
    local_stripe: LocalStripe,
) -> Iterator[LocalStripe]:
    """A service directory whose app.main:app has billing, configured like the test apps."""
    package = isolated_environment / "app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "main.py").write_text(APP_MODULE)
    for name, value in {
        "ENVIRONMENT": "test",
        "SECRET_KEY": SECRET_KEY,
        "AUTH_PROVIDER": "dev",
        "DATABASE_URL": postgres_url,
        "STRIPE_SECRET_KEY": local_stripe.api_key,
        "STRIPE_WEBHOOK_SECRET": local_stripe.webhook_secret,
        "STRIPE_API_BASE": local_stripe.url,
    }.items():
        monkeypatch.setenv(name, value)
    yield local_stripe
    for name in [m for m in sys.modules if m == "app" or m.startswith("app.")]:
        del sys.modules[name]


def subscribe_and_drift(stripe: LocalStripe, postgres_url: str) -> str:
    """Subscribe user-ada through the webhooks, then corrupt the stored row.

    (The CLI prints its result to stdout, where the service's JSON log lines go too.)
    """

    async def run() -> str:
        app = billing_app(stripe, database_url=postgres_url)
        async with running(app) as client:
            checkout = await client.post(
                "/api/v1/billing/checkout", json={"plan": "team"}, headers=auth_headers("user-ada")
            )
            for event in stripe.complete_checkout(checkout.json()["id"]):
                await deliver(client, stripe, event)
            (subscription_id,) = stripe.subscriptions
            async with app.state.database.session() as session:
                await session.execute(
                    update(billing_subscriptions).values(status="canceled", quantity=99)
                )
        return subscription_id

    return asyncio.run(run())


def stored(stripe: LocalStripe, postgres_url: str, statement: Any) -> Any:
    async def run() -> Any:
        app = billing_app(stripe, database_url=postgres_url)
        async with app.router.lifespan_context(app), app.state.database.session() as session:
            return (await session.execute(statement)).one()

    return asyncio.run(run())


def test_sync_corrects_drifted_subscriptions(
    service: LocalStripe, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    subscription_id = subscribe_and_drift(service, postgres_url)

    status = main(["billing", "sync"])
    again = main(["billing", "sync"])

    output = [line for line in capsys.readouterr().out.splitlines() if line[:1] != "{"]
    assert (status, again) == (0, 0)
    assert output == [
        "checked 1 subscriptions of 1 customers; corrected 1",
        "checked 1 subscriptions of 1 customers; corrected 0",
    ]
    row = stored(
        service,
        postgres_url,
        select(billing_subscriptions).where(billing_subscriptions.c.id == subscription_id),
    )
    assert (row.status, row.quantity) == ("active", 1)


def test_replay_processes_stored_events_that_failed(
    service: LocalStripe, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    subscription_id = subscribe_and_drift(service, postgres_url)
    service.advance(5)
    event = service.update_subscription(subscription_id, quantity=4)

    async def store_failed() -> None:
        app = billing_app(service, database_url=postgres_url)
        async with app.router.lifespan_context(app), app.state.database.session() as session:
            await session.execute(
                billing_events.insert().values(
                    id=event["id"],
                    type=event["type"],
                    created=event["created"],
                    received_at=datetime.now(UTC),
                    processed_at=None,
                    attempts=1,
                    last_error="RuntimeError: down",
                    payload=event,
                )
            )

    asyncio.run(store_failed())

    status = main(["billing", "replay"])

    assert status == 0
    output = [line for line in capsys.readouterr().out.splitlines() if line[:1] != "{"]
    assert output == ["replayed 1 events: 1 processed, 0 failed"]
    row = stored(
        service, postgres_url, select(billing_events).where(billing_events.c.id == event["id"])
    )
    assert row.processed_at is not None
    assert row.last_error is None
    subscription = stored(
        service,
        postgres_url,
        select(billing_subscriptions).where(billing_subscriptions.c.id == subscription_id),
    )
    assert subscription.quantity == 4


def test_an_app_without_billing_is_reported(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = isolated_environment / "plain"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "main.py").write_text("from omnistack_core import create_app\napp = create_app()\n")
    try:
        status = main(["billing", "sync", "--app", "plain.main:app"])
    finally:
        for name in [m for m in sys.modules if m == "plain" or m.startswith("plain.")]:
            del sys.modules[name]

    assert status == 1
    assert "has no BillingModule" in capsys.readouterr().err
