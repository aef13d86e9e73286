"""The README's billing example runs as written."""

from __future__ import annotations

import json

import pytest

from omnistack_core.auth import auth_metadata
from omnistack_core.billing import billing_metadata
from omnistack_core.testing import app_client
from omnistack_core.testing.stripe_server import LocalStripe
from tests.billing.billing_apps import SECRET_KEY, auth_headers, deliver
from tests.test_readme import python_blocks


async def test_the_billing_example_gates_reports_on_the_pro_plan(
    local_stripe: LocalStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    [example] = [block for block in python_blocks() if "BillingModule()" in block]
    price = local_stripe.add_price()
    for name, value in {
        "SECRET_KEY": SECRET_KEY,
        "AUTH_PROVIDER": "dev",
        "STRIPE_SECRET_KEY": local_stripe.api_key,
        "STRIPE_WEBHOOK_SECRET": local_stripe.webhook_secret,
        "STRIPE_API_BASE": local_stripe.url,
        "BILLING_PLANS": json.dumps({"pro": price}),
    }.items():
        monkeypatch.setenv(name, value)
    namespace: dict[str, object] = {}
    exec(compile(example, "README.md", "exec", dont_inherit=True), namespace)  # noqa: S102
    app = namespace["app"]
    ada = auth_headers("user-ada")

    async with app_client(app) as client:
        async with app.state.database.engine.begin() as connection:
            await connection.run_sync(auth_metadata.create_all)
            await connection.run_sync(billing_metadata.create_all)
        before = await client.get("/api/v1/reports", headers=ada)
        checkout = await client.post("/api/v1/billing/checkout", json={"plan": "pro"}, headers=ada)
        for event in local_stripe.complete_checkout(checkout.json()["id"]):
            assert (await deliver(client, local_stripe, event)).status_code == 200
        after = await client.get("/api/v1/reports", headers=ada)

    assert before.status_code == 402
    assert after.json() == {"plan": "pro"}
