"""Billing installed into an app of its own: its prefix, its error format, its database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import create_async_engine

from omnistack_core import install
from omnistack_core.auth import AuthModule, mint_dev_token
from omnistack_core.billing import (
    BillingModule,
    Plan,
    Subscription,
    require_feature,
    require_subscription,
)
from omnistack_core.testing import app_client

SECRET_KEY = "installed-billing-secret-key-0123456789"
HEADERS = {"Authorization": f"Bearer {mint_dev_token(SECRET_KEY, 'user-ada')}"}


@pytest.fixture
async def client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """An app with FastAPI's own error handlers and billing under ``/shop``, on SQLite."""
    monkeypatch.setenv("SHOP_ENVIRONMENT", "test")
    monkeypatch.setenv("SHOP_SECRET_KEY", SECRET_KEY)
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    auth, billing = AuthModule(), BillingModule(plans=[Plan(name="pro", price="price_pro")])
    app = FastAPI()
    install(app, [auth, billing], database=engine, prefix="/shop", env_prefix="SHOP_")

    @app.get("/reports")
    async def reports(
        subscription: Annotated[Subscription, Depends(require_subscription())],
    ) -> dict[str, str]:
        return {"plan": str(subscription.plan)}

    @app.get("/exports", dependencies=[Depends(require_feature("csv-export"))])
    async def exports() -> dict[str, bool]:
        return {"ok": True}

    async with engine.begin() as connection:
        for metadata in [*auth.metadata(), *billing.metadata()]:
            await connection.run_sync(metadata.create_all)
    async with app_client(app) as client:
        yield client
    await engine.dispose()


async def test_a_402_in_the_apps_own_format_names_the_checkout_where_billing_is_mounted(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/reports", headers=HEADERS)

    assert response.status_code == 402
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "detail": "This needs an active subscription to the 'pro' plan. "
        "Buy a plan with POST /shop/billing/checkout."
    }


async def test_a_missing_feature_names_the_same_checkout(client: httpx.AsyncClient) -> None:
    response = await client.get("/exports", headers=HEADERS)

    assert response.status_code == 402
    assert response.json()["detail"].endswith("Buy a plan with POST /shop/billing/checkout.")


async def test_without_a_token_the_billing_routes_answer_401_in_the_apps_own_format(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/shop/billing/subscription")

    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication required."}
    assert response.headers["www-authenticate"] == "Bearer"
