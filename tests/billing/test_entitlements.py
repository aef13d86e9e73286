"""Stripe Entitlements features gate routes; has_active_subscription answers outside requests."""

from __future__ import annotations

from omnistack_core.billing import has_active_subscription
from omnistack_core.testing.stripe_server import LocalStripe
from tests.billing.billing_apps import auth_headers, billing_app, deliver, running


async def test_features_granted_by_stripe_open_the_routes_that_need_them(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    app = billing_app(local_stripe, database_url=postgres_url)
    ada = auth_headers("user-ada")

    async with running(app) as client:
        checkout = await client.post("/api/v1/billing/checkout", json={"plan": "pro"}, headers=ada)
        for event in local_stripe.complete_checkout(checkout.json()["id"]):
            await deliver(client, local_stripe, event)
        customer_id = next(iter(local_stripe.customers))
        without = await client.get("/exports", headers=ada)
        local_stripe.advance(5)
        granted = local_stripe.set_entitlements(customer_id, ["csv-export", "api-access"])
        await deliver(client, local_stripe, granted)
        with_feature = await client.get("/exports", headers=ada)
        state = await client.get("/api/v1/billing/subscription", headers=ada)
        local_stripe.advance(5)
        revoked = local_stripe.set_entitlements(customer_id, ["api-access"])
        await deliver(client, local_stripe, revoked)
        # An older summary that arrives late (a separate event, created before the revocation).
        stale = local_stripe.event(
            granted["type"], granted["data"]["object"], created=granted["created"]
        )
        late = await deliver(client, local_stripe, stale)
        after = await client.get("/exports", headers=ada)

    assert without.status_code == 402
    assert without.json()["feature"] == "csv-export"
    assert with_feature.json() == {"ok": True}
    assert state.json()["features"] == ["api-access", "csv-export"]
    assert late.json() == {"status": "processed"}
    assert after.status_code == 402


async def test_has_active_subscription_answers_for_jobs_and_scripts(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    app = billing_app(local_stripe, database_url=postgres_url)

    async with running(app) as client:
        before = await has_active_subscription(app, "user-ada")
        checkout = await client.post(
            "/api/v1/billing/checkout", json={"plan": "team"}, headers=auth_headers("user-ada")
        )
        for event in local_stripe.complete_checkout(checkout.json()["id"]):
            await deliver(client, local_stripe, event)
        after = await has_active_subscription(app, "user-ada")
        on_team = await has_active_subscription(app, "user-ada", plans=["team"])
        on_pro = await has_active_subscription(app, "user-ada", plans=["pro"])
        other_user = await has_active_subscription(app, "user-bob")

    assert (before, after, on_team, on_pro, other_user) == (False, True, True, False, False)
