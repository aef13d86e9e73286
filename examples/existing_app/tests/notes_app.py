"""The Notes app as its tests run it: its own Alembic, the local Stripe and token issuer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from examples.existing_app.main import create_app
from omnistack_core.testing import LocalStripe, app_client
from omnistack_core.testing.issuer import LocalIssuer

EXAMPLE = Path(__file__).resolve().parents[1]
ROOT = EXAMPLE.parents[1]
PREFIX = "/omnistack"


def alembic(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the app's own Alembic, as a deploy runs it: from the repository's root."""
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(EXAMPLE / "alembic.ini"), *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def environment(
    database_url: str, issuer: LocalIssuer, stripe: LocalStripe, price: str
) -> dict[str, str]:
    """The environment of a deploy: the host's own variables, and the modules' prefixed."""
    return {
        # The app's own, with a value OmniStack would read as production.
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "prod",
        # The modules'.
        "OMNISTACK_ENVIRONMENT": "test",
        "OMNISTACK_AUTH_PROVIDER": "supabase",
        "OMNISTACK_SUPABASE_PROJECT_URL": issuer.url,
        "OMNISTACK_STRIPE_SECRET_KEY": stripe.api_key,
        "OMNISTACK_STRIPE_WEBHOOK_SECRET": stripe.webhook_secret,
        "OMNISTACK_STRIPE_API_BASE": stripe.url,
        "OMNISTACK_STRIPE_MAX_NETWORK_RETRIES": "0",
        "OMNISTACK_BILLING_PLANS": json.dumps({"pro": price}),
        "OMNISTACK_BILLING_SUCCESS_URL": "https://notes.example.com/account",
    }


@dataclass
class Notes:
    """The running app, a client, and the local issuer and Stripe it talks to."""

    app: FastAPI
    client: httpx.AsyncClient
    issuer: LocalIssuer
    stripe: LocalStripe

    def headers(self, user_id: str) -> dict[str, str]:
        """Signed in as ``user_id``, with a Supabase token of the local issuer."""
        return {"Authorization": f"Bearer {self.issuer.supabase_token(user_id)}"}

    async def deliver(self, event: dict[str, Any]) -> httpx.Response:
        """POST ``event`` to the billing webhook where the app mounted it, signed by Stripe."""
        body, headers = self.stripe.signed(event)
        return await self.client.post(f"{PREFIX}/billing/webhook", content=body, headers=headers)

    def session(self) -> AsyncSession:
        """A session of the app's own session factory."""
        sessions: async_sessionmaker[AsyncSession] = self.app.state.sessions
        return sessions()

    async def count(self, table: Table) -> int:
        """Rows in ``table``."""
        async with self.session() as session:
            return int(await session.scalar(select(func.count()).select_from(table)) or 0)


@asynccontextmanager
async def running(issuer: LocalIssuer, stripe: LocalStripe) -> AsyncIterator[Notes]:
    """The app built from the environment, started, with a client."""
    app = create_app()
    async with app_client(app) as client:
        yield Notes(app, client, issuer, stripe)
