"""Signed Stripe events per second through the billing webhook into PostgreSQL, in process.

Three workloads go through ``POST /api/v1/billing/webhook`` of one app (ASGI, in process,
``--concurrency`` deliveries in flight), into a fresh PostgreSQL database:

  * fresh: every delivery a new ``customer.subscription.updated`` event (over many
    subscriptions, each newer than the last): verified, recorded and applied;
  * duplicate-heavy: each new event delivered ``--copies`` times, shuffled, as Stripe's retries
    and concurrent redeliveries look: one applied, the rest answered ``duplicate``;
  * verify only (the ceiling): the same request path, signature check and JSON parse, and no
    database, on a route of its own.

Database round trips per delivery are counted from the engine (statements, BEGIN and COMMIT
or ROLLBACK each one). Events are signed before timing: signing is Stripe's cost, not ours.

    uv run python benchmarks/webhook_ingest.py [--events 2000 --copies 10 --concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import random
import time
from collections.abc import Sequence
from typing import Any

import httpx
from fastapi import FastAPI, Request
from sqlalchemy import event as sqlalchemy_event

from omnistack_core import create_app
from omnistack_core.auth import AuthModule, AuthSettings, auth_metadata, mint_dev_token
from omnistack_core.billing import (
    BillingModule,
    BillingSettings,
    billing_metadata,
    parse_event,
    verify_signature,
)
from omnistack_core.settings import load_settings
from omnistack_core.testing import app_client, create_test_database, drop_test_database
from omnistack_core.testing.services import DEFAULT_TEST_POSTGRES_URL
from omnistack_core.testing.stripe_server import LocalStripe

Delivery = tuple[bytes, dict[str, str]]
SECRET_KEY = "benchmark-secret-key-0123456789abcdef"  # noqa: S105 - signs dev tokens here only


class ServiceSettings(BillingSettings, AuthSettings):
    """Auth and billing settings together."""


class RoundTrips:
    """Counts what the engine sends PostgreSQL: statements, BEGIN, COMMIT and ROLLBACK."""

    def __init__(self, app: FastAPI) -> None:
        self.count = 0
        engine = app.state.database.engine.sync_engine
        for name in ("before_cursor_execute", "begin", "commit", "rollback"):
            sqlalchemy_event.listen(engine, name, self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1


def build_app(stripe: LocalStripe, database_url: str) -> FastAPI:
    settings = load_settings(
        ServiceSettings,
        env_file=None,
        environment="test",
        secret_key=SECRET_KEY,
        auth_provider="dev",
        database_url=database_url,
        db_pool_size=10,
        log_level="WARNING",
        metrics_enabled=False,
        stripe_secret_key=stripe.api_key,
        stripe_webhook_secret=stripe.webhook_secret,
        stripe_api_base=stripe.url,
        billing_plans={"pro": stripe.add_price()},
    )
    app = create_app(settings, modules=[AuthModule(), BillingModule()])

    @app.post("/bench/verify-only")
    async def verify_only(request: Request) -> dict[str, str]:
        body = await request.body()
        verify_signature(body, request.headers.get("stripe-signature"), [stripe.webhook_secret])
        return {"status": parse_event(body).type}

    return app


def subscription_events(
    stripe: LocalStripe, template: dict[str, Any], count: int, first_created: int
) -> list[Any]:
    """``count`` updates of 200 subscriptions shaped like ``template``, each newer."""
    events = []
    for number in range(count):
        subscription = copy.deepcopy(template)
        subscription["id"] = f"sub_bench{number % 200:05d}"
        subscription["items"]["data"][0]["quantity"] = number + 1
        events.append(
            stripe.event(
                "customer.subscription.updated",
                subscription,
                previous_attributes={"quantity": number},
                created=first_created + number,
            )
        )
    return events


async def deliver_all(
    client: httpx.AsyncClient, path: str, deliveries: Sequence[Delivery], concurrency: int
) -> tuple[float, dict[str, int]]:
    """Seconds taken, and the count of each answer's status."""
    queue = list(reversed(deliveries))
    outcomes: dict[str, int] = {}

    async def worker() -> None:
        while queue:
            body, headers = queue.pop()
            response = await client.post(path, content=body, headers=headers)
            if response.status_code != 200:
                raise SystemExit(f"{path} answered {response.status_code}: {response.text}")
            status = response.json()["status"]
            outcomes[status] = outcomes.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, outcomes


async def main(events: int, copies: int, concurrency: int) -> None:
    database_url = create_test_database(DEFAULT_TEST_POSTGRES_URL)
    try:
        with LocalStripe() as stripe:
            app = build_app(stripe, database_url)
            async with app_client(app) as client:
                async with app.state.database.engine.begin() as connection:
                    await connection.run_sync(auth_metadata.create_all)
                    await connection.run_sync(billing_metadata.create_all)
                customer = await client.post(
                    "/api/v1/billing/checkout",
                    json={"plan": "pro"},
                    headers={"Authorization": "Bearer " + dev_token()},
                )
                if customer.status_code != 200:
                    raise SystemExit(f"checkout failed: {customer.text}")
                stripe.complete_checkout(customer.json()["id"])
                template = next(iter(stripe.subscriptions.values()))
                now = int(time.time())
                fresh = subscription_events(stripe, template, events, now - 3 * events)
                unique = max(events // copies, 1)
                repeated = subscription_events(stripe, template, unique, now - 2 * events + 1)
                fresh_signed = [stripe.signed(e) for e in fresh]
                repeated_signed = [stripe.signed(e) for e in repeated] * copies
                random.Random(7).shuffle(repeated_signed)  # noqa: S311 - an order, not a secret
                calls_before = len(stripe.requests)
                trips = RoundTrips(app)

                await deliver_all(client, "/bench/verify-only", fresh_signed[:200], concurrency)
                ceiling, _ = await deliver_all(
                    client, "/bench/verify-only", fresh_signed, concurrency
                )
                trips.count = 0
                fresh_seconds, fresh_outcomes = await deliver_all(
                    client, "/api/v1/billing/webhook", fresh_signed, concurrency
                )
                fresh_trips = trips.count
                trips.count = 0
                dup_seconds, dup_outcomes = await deliver_all(
                    client, "/api/v1/billing/webhook", repeated_signed, concurrency
                )
                dup_trips = trips.count
                if len(stripe.requests) != calls_before:
                    raise SystemExit("events reached Stripe: the workload was not ingest alone")
    finally:
        drop_test_database(DEFAULT_TEST_POSTGRES_URL, database_url)

    total = len(repeated_signed)
    print(f"{concurrency} deliveries in flight, in-process ASGI, PostgreSQL on 127.0.0.1\n")
    print(f"{'workload':<34}{'deliveries':>11}{'per second':>12}{'round trips':>13}")
    print(f"{'verify only (no database)':<34}{events:>11}{events / ceiling:>12.0f}{'-':>13}")
    print(
        f"{'fresh events':<34}{events:>11}{events / fresh_seconds:>12.0f}"
        f"{fresh_trips / events:>13.2f}"
    )
    print(
        f"{f'duplicate-heavy ({copies} copies each)':<34}{total:>11}{total / dup_seconds:>12.0f}"
        f"{dup_trips / total:>13.2f}"
    )
    print(f"\nfresh outcomes: {fresh_outcomes}; duplicate-heavy outcomes: {dup_outcomes}")
    print(
        f"fresh ingest runs at {ceiling / fresh_seconds:.0%} of the verify-only ceiling; "
        f"duplicates at {ceiling * total / (dup_seconds * events):.0%}"
    )


def dev_token() -> str:
    return mint_dev_token(SECRET_KEY, "bench-user")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="fresh events (2000)")
    parser.add_argument("--copies", type=int, default=10, help="deliveries of each event (10)")
    parser.add_argument("--concurrency", type=int, default=8, help="in flight (8)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.events, arguments.copies, arguments.concurrency))
