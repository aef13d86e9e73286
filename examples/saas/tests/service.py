"""The SaaS example as the tests run it, and the local providers it talks to."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from examples.saas.main import create_service
from examples.saas.settings import SaasSettings
from omnistack_core import load_settings
from omnistack_core.auth import mint_dev_token
from omnistack_core.jobs import InlineQueue, JobsModule
from omnistack_core.testing import LocalOpenAI, LocalResend, LocalStripe, app_client

SECRET_KEY = "saas-example-tests-secret-key-0123456789abcdef"
METER = "ai_tokens"
TRIAL_DAYS = 14


def as_environment(values: dict[str, Any]) -> dict[str, str]:
    """``values`` as environment variables (JSON for the structured ones)."""
    return {
        name.upper(): value if isinstance(value, str) else json.dumps(value)
        for name, value in values.items()
    }


@dataclass
class Service:
    """The running service and the local providers it talks to."""

    app: FastAPI
    client: httpx.AsyncClient
    stripe: LocalStripe
    openai: LocalOpenAI
    resend: LocalResend

    @staticmethod
    def new_user() -> tuple[str, dict[str, str]]:
        """A user no other test has (the database lives for the whole run), and their headers."""
        user_id = f"user-{uuid.uuid4().hex[:12]}"
        token = mint_dev_token(SECRET_KEY, user_id, email=f"{user_id}@example.com")
        return user_id, {"Authorization": f"Bearer {token}"}

    async def deliver(self, event: dict[str, Any]) -> httpx.Response:
        """POST ``event`` to the billing webhook, signed as Stripe signs it."""
        body, headers = self.stripe.signed(event)
        return await self.client.post("/api/v1/billing/webhook", content=body, headers=headers)

    async def subscribe(self, headers: dict[str, str]) -> list[dict[str, Any]]:
        """Check out the ``pro`` plan and pay, as the customer would; the events Stripe sent."""
        checkout = await self.client.post(
            "/api/v1/billing/checkout", json={"plan": "pro"}, headers=headers
        )
        assert checkout.status_code == 200, checkout.text
        events = self.stripe.complete_checkout(checkout.json()["id"])
        for event in events:
            delivered = await self.deliver(event)
            assert delivered.json() == {"status": "processed"}, delivered.text
        return events

    async def jobs_done(self) -> None:
        """Wait until the jobs queued so far (and those they queued) have run."""
        queue = JobsModule.of(self.app)
        assert isinstance(queue, InlineQueue)
        await queue.drain(wait_seconds=30)
        assert queue.failed == []


@asynccontextmanager
async def running(
    values: dict[str, Any], stripe: LocalStripe, openai: LocalOpenAI, resend: LocalResend
) -> AsyncIterator[Service]:
    """The service built from settings ``values`` (field names), started, with a client."""
    app = create_service(load_settings(SaasSettings, env_file=None, **values))
    async with app_client(app) as client:
        yield Service(app, client, stripe, openai, resend)
    # In-process jobs still pending ran during shutdown: none may have failed either.
    queue = JobsModule.of(app)
    if isinstance(queue, InlineQueue):
        assert queue.failed == []
