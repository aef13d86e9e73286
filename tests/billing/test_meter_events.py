"""Usage reported to Stripe meters: counted once per identifier, only for known customers."""

from __future__ import annotations

from omnistack_core.billing import BillingModule
from omnistack_core.testing.stripe_server import LocalStripe
from tests.billing.billing_apps import auth_headers, billing_app, running


async def test_usage_is_reported_once_per_identifier(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    app = billing_app(local_stripe, database_url=postgres_url)

    async with running(app) as client:
        await client.post(
            "/api/v1/billing/checkout", json={"plan": "pro"}, headers=auth_headers("user-ada")
        )
        billing = BillingModule.of(app)
        first = await billing.report_usage("user-ada", "ai_tokens", 120, identifier="use-1")
        again = await billing.report_usage("user-ada", "ai_tokens", 120, identifier="use-1")
        other = await billing.report_usage("user-ada", "ai_tokens", 30, identifier="use-2")
        local_stripe.advance(2 * 86_400)  # past Stripe's idempotency window
        late = await billing.report_usage("user-ada", "ai_tokens", 120, identifier="use-1")
        unknown = await billing.report_usage("user-bob", "ai_tokens", 5, identifier="use-3")

    assert (first, again, other, late, unknown) == (True, True, True, True, False)
    (customer_id,) = local_stripe.customers
    assert [
        (event["event_name"], event["identifier"], event["payload"])
        for event in local_stripe.meter_events
    ] == [
        ("ai_tokens", "use-1", {"stripe_customer_id": customer_id, "value": "120"}),
        ("ai_tokens", "use-2", {"stripe_customer_id": customer_id, "value": "30"}),
    ]
