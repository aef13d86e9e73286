"""AI usage reported to Stripe meters through a usage hook the app wires (no import between
the modules)."""

from __future__ import annotations

import pytest

from omnistack_core import create_app
from omnistack_core.ai import AIModule, AISettings, ChatRequest, Message, UsageRecord
from omnistack_core.billing import BillingModule
from omnistack_core.testing import app_client
from tests.ai.ai_clients import Providers

billing = pytest.importorskip("omnistack_core.billing")
billing_apps = pytest.importorskip("tests.billing.billing_apps")
stripe_server = pytest.importorskip("omnistack_core.testing.stripe_server")


class ServiceSettings(billing_apps.ServiceSettings, AISettings):
    """Auth, billing and AI settings together."""


async def test_each_call_is_metered_once_under_its_usage_id(providers: Providers) -> None:
    with stripe_server.LocalStripe() as stripe:
        price = stripe.add_price()

        async def meter(record: UsageRecord) -> None:
            if record.user_id is not None:
                await BillingModule.of(app).report_usage(
                    record.user_id,
                    "ai_tokens",
                    record.usage.total_tokens,
                    identifier=record.id,
                )

        settings = ServiceSettings(
            _env_file=None,
            secret_key=billing_apps.SECRET_KEY,
            auth_provider="dev",
            stripe_secret_key=stripe.api_key,
            stripe_api_base=stripe.url,
            billing_plans={"pro": price},
            openai_api_key=providers.openai.api_key,
            openai_base_url=providers.openai.url,
            ai_max_retries=0,
        )
        from omnistack_core.auth import AuthModule  # noqa: PLC0415

        app = create_app(
            settings, modules=[AuthModule(), billing.BillingModule(), AIModule(on_usage=[meter])]
        )
        providers.openai.reply("Metered.", usage={"prompt_tokens": 40, "completion_tokens": 2})
        async with app_client(app) as client:
            async with app.state.database.engine.begin() as connection:
                await connection.run_sync(billing.billing_metadata.create_all)
            await client.post(
                "/api/v1/billing/checkout",
                json={"plan": "pro"},
                headers=billing_apps.auth_headers("user-ada"),
            )
            await AIModule.of(app).chat(
                ChatRequest([Message.user("Hi")], model="openai:gpt-4o-mini", user_id="user-ada")
            )
            await AIModule.of(app).chat(
                ChatRequest([Message.user("Hi")], model="openai:gpt-4o-mini", user_id="user-bob")
            )

        [event] = stripe.meter_events
        (customer_id,) = stripe.customers
        assert event["event_name"] == "ai_tokens"
        assert event["payload"] == {"stripe_customer_id": customer_id, "value": "42"}
        assert len(event["identifier"]) == 36  # the usage record's id
