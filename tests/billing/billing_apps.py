"""Apps with the auth and billing modules against a local Stripe, shared by the billing tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI
from sqlalchemy import func, select

from omnistack_core import Settings, create_app
from omnistack_core.auth import AuthModule, AuthSettings, auth_metadata, mint_dev_token
from omnistack_core.billing import (
    BillingModule,
    BillingSettings,
    Subscription,
    billing_metadata,
    require_feature,
    require_subscription,
)
from omnistack_core.settings import load_settings
from omnistack_core.testing import app_client
from omnistack_core.testing.stripe_server import LocalStripe

SECRET_KEY = "billing-tests-secret-key-0123456789abcdef"


class ServiceSettings(Settings, BillingSettings, AuthSettings):
    """The settings of a service with auth and billing."""


def billing_app(
    stripe: LocalStripe,
    *,
    module: BillingModule | None = None,
    database_url: str | None = None,
    **settings: Any,
) -> FastAPI:
    """An app selling ``pro`` (with a 14-day trial) and ``team`` at the local Stripe's prices,
    with routes gated by a subscription and by a feature."""
    pro = stripe.add_price(lookup_key="pro-monthly")
    team = stripe.add_price(unit_amount=5000, lookup_key="team-monthly")
    values: dict[str, Any] = {
        "environment": "test",
        "secret_key": SECRET_KEY,
        "auth_provider": "dev",
        "stripe_secret_key": stripe.api_key,
        "stripe_webhook_secret": stripe.webhook_secret,
        "stripe_api_base": stripe.url,
        "billing_plans": {"pro": {"price": pro, "trial_days": 14}, "team": team},
        "billing_success_url": "https://app.example.com/billing/done",
        "stripe_max_network_retries": 0,
        **settings,
    }
    if database_url is not None:
        values["database_url"] = database_url
    app = create_app(
        load_settings(ServiceSettings, env_file=None, **values),
        modules=[AuthModule(), module or BillingModule()],
    )

    @app.get("/reports")
    async def reports(
        subscription: Annotated[Subscription, Depends(require_subscription())],
    ) -> dict[str, Any]:
        return {"plan": subscription.plan, "status": subscription.status}

    @app.get("/team-only")
    async def team_only(
        subscription: Annotated[Subscription, Depends(require_subscription(plans=["team"]))],
    ) -> dict[str, Any]:
        return {"plan": subscription.plan}

    @app.get("/exports", dependencies=[Depends(require_feature("csv-export"))])
    async def exports() -> dict[str, bool]:
        return {"ok": True}

    return app


def auth_headers(user_id: str, email: str | None = None) -> dict[str, str]:
    """Headers signing the request in as ``user_id`` (the dev provider)."""
    return {"Authorization": f"Bearer {mint_dev_token(SECRET_KEY, user_id, email=email)}"}


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Start ``app``, create the users and billing tables afresh, and yield a client."""
    async with app_client(app) as client:
        async with app.state.database.engine.begin() as connection:
            for metadata in (billing_metadata, auth_metadata):
                await connection.run_sync(metadata.drop_all)
                await connection.run_sync(metadata.create_all)
        yield client


async def deliver(
    client: httpx.AsyncClient, stripe: LocalStripe, event: dict[str, Any], **signing: Any
) -> httpx.Response:
    """POST ``event`` to the webhook, signed as Stripe signs it."""
    body, headers = stripe.signed(event, **signing)
    return await client.post("/api/v1/billing/webhook", content=body, headers=headers)


async def count_rows(app: FastAPI, table: Any) -> int:
    """Rows in ``table``."""
    async with app.state.database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)
