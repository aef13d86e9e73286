"""Stripe's errors reach clients as problem+json with a status that fits, and no secret."""

from __future__ import annotations

import logging

import pytest

from omnistack_core.testing.stripe_server import LocalStripe
from tests.billing.billing_apps import auth_headers, billing_app, running

CHECKOUT = "/api/v1/billing/checkout"


async def test_a_declined_card_is_402_with_the_decline_code(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    app = billing_app(local_stripe, database_url=postgres_url)

    async with running(app) as client:
        local_stripe.fail_next(402, decline_code="insufficient_funds", path="/v1/checkout/sessions")
        response = await client.post(CHECKOUT, json={"plan": "pro"}, headers=auth_headers("u1"))

    assert response.status_code == 402
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["decline_code"] == "insufficient_funds"


async def test_a_rate_limit_is_503_with_retry_after(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    app = billing_app(local_stripe, database_url=postgres_url)

    async with running(app) as client:
        local_stripe.fail_next(429)
        response = await client.post(CHECKOUT, json={"plan": "pro"}, headers=auth_headers("u1"))

    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0


async def test_a_bad_key_is_logged_and_500_without_the_key(
    postgres_url: str, local_stripe: LocalStripe, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_key = "sk_test_wrong_key_that_must_not_leak_123456"
    app = billing_app(local_stripe, database_url=postgres_url, stripe_secret_key=wrong_key)

    with caplog.at_level(logging.ERROR, logger="omnistack.billing"):
        async with running(app) as client:
            response = await client.post(CHECKOUT, json={"plan": "pro"}, headers=auth_headers("u1"))

    assert response.status_code == 500
    assert response.json()["detail"] == "Billing is misconfigured; the error was logged."
    assert wrong_key not in response.text
    refused = [r for r in caplog.records if "Stripe refused" in r.getMessage()]
    assert refused
    assert all(wrong_key not in r.getMessage() for r in caplog.records)


async def test_an_unknown_price_is_our_misconfiguration_not_the_clients(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    app = billing_app(
        local_stripe, database_url=postgres_url, billing_plans={"gold": "price_missing"}
    )

    async with running(app) as client:
        response = await client.post(CHECKOUT, json={"plan": "gold"}, headers=auth_headers("u1"))

    assert response.status_code == 500
    assert "price_missing" not in response.text


async def test_a_stripe_outage_is_503_and_the_sdk_retry_reuses_the_idempotency_key(
    postgres_url: str, local_stripe: LocalStripe
) -> None:
    down = billing_app(local_stripe, database_url=postgres_url)
    retrying = billing_app(local_stripe, database_url=postgres_url, stripe_max_network_retries=2)

    async with running(down) as client:
        local_stripe.fail_next(500)
        outage = await client.post(CHECKOUT, json={"plan": "pro"}, headers=auth_headers("u1"))
    local_stripe.requests.clear()
    async with running(retrying) as client:
        local_stripe.fail_next(500, path="/v1/checkout/sessions")
        recovered = await client.post(CHECKOUT, json={"plan": "pro"}, headers=auth_headers("u2"))

    assert outage.status_code == 503
    assert recovered.status_code == 200
    attempts = [r for r in local_stripe.requests if r.path == "/v1/checkout/sessions"]
    assert [r.status for r in attempts] == [500, 200]
    assert attempts[0].headers["idempotency-key"] == attempts[1].headers["idempotency-key"]
