"""The SaaS example under test: real PostgreSQL, and local Stripe, OpenAI and Resend servers.

The official SDKs talk to the local servers over HTTP exactly as they would to the providers;
nothing of the example or the library is replaced. Without ``REDIS_URL`` the jobs run in the
API process, where :meth:`Service.jobs_done` waits for them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from examples.saas.tests.service import METER, SECRET_KEY, TRIAL_DAYS, Service, running
from omnistack_core.testing import LocalOpenAI, LocalResend, LocalStripe


@pytest.fixture
def settings_values(
    postgres_url: str,
    local_stripe: LocalStripe,
    local_openai: LocalOpenAI,
    local_resend: LocalResend,
) -> dict[str, Any]:
    """The service's settings (field names) for the local servers, as a deploy would set them."""
    price = local_stripe.add_price(lookup_key="pro-monthly", product_name="Summarizer Pro")
    return {
        "environment": "test",
        "secret_key": SECRET_KEY,
        "database_url": postgres_url,
        "auth_provider": "dev",
        "stripe_secret_key": local_stripe.api_key,
        "stripe_webhook_secret": local_stripe.webhook_secret,
        "stripe_api_base": local_stripe.url,
        "stripe_max_network_retries": 0,
        "billing_plans": {"pro": {"price": price, "trial_days": TRIAL_DAYS}},
        "billing_success_url": "https://summarizer.example.com/account",
        "openai_api_key": local_openai.api_key,
        "openai_base_url": local_openai.url,
        "ai_default_model": "openai:gpt-4o-mini",
        "ai_max_retries": 0,
        "email_provider": "resend",
        "resend_api_key": local_resend.api_key,
        "resend_api_url": local_resend.url,
        "email_from": "Summarizer <hello@summarizer.example.com>",
        "usage_meter_event": METER,
        "jobs_retry_base_seconds": 0.01,
    }


@pytest.fixture
async def service(
    settings_values: dict[str, Any],
    local_stripe: LocalStripe,
    local_openai: LocalOpenAI,
    local_resend: LocalResend,
) -> AsyncIterator[Service]:
    """The service, started, with a client."""
    async with running(settings_values, local_stripe, local_openai, local_resend) as started:
        yield started
