"""Apps with the console, built as a service builds them, for the console's tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import create_async_engine

from omnistack_core import Module, Settings, create_app, load_settings, settings_class_for
from omnistack_core.console import ConsoleModule
from omnistack_core.testing.stripe_server import LocalStripe

SECRET_KEY = "console-test-key-" + "k" * 32


def console_app(
    modules: Sequence[Module[Any]] = (), *, environment: str = "test", **values: Any
) -> FastAPI:
    """An app with ``modules`` and the console, settings given as values (no environment)."""
    installed = [*modules, ConsoleModule()]
    values.setdefault("database_url", "sqlite+aiosqlite:///:memory:")
    settings = load_settings(
        settings_class_for(installed, base=Settings),
        environment=environment,
        secret_key=SECRET_KEY,
        service_name="console-test",
        **values,
    )
    return create_app(settings, modules=installed)


async def create_tables(app: FastAPI, *metadata: MetaData) -> None:
    """Create ``metadata``'s tables in the running app's database (tests skip migrations)."""
    async with app.state.database.engine.begin() as connection:
        for tables in metadata:
            await connection.run_sync(tables.create_all)


def billing_values(stripe: LocalStripe) -> dict[str, Any]:
    """Settings of a service selling ``team`` at the local Stripe's price."""
    team = stripe.add_price(unit_amount=5000, lookup_key="team-monthly")
    return {
        "auth_provider": "dev",
        "stripe_secret_key": stripe.api_key,
        "stripe_webhook_secret": stripe.webhook_secret,
        "stripe_api_base": stripe.url,
        "billing_plans": {"team": team},
        "billing_success_url": "https://app.example.com/billing/done",
        "stripe_max_network_retries": 0,
    }


async def create_tables_at(database_url: str, *metadata: MetaData) -> None:
    """Create ``metadata``'s tables at ``database_url`` with an engine of this event loop."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            for tables in metadata:
                await connection.run_sync(tables.create_all)
    finally:
        await engine.dispose()
