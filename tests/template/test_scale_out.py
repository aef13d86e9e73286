"""Many copies of one service are safe: a generated service with every module, run as two API
processes (two uvicorn workers each) and two arq workers on one PostgreSQL and one Redis.

Migrations started at once apply once; mixed traffic (signed-in requests, requests that queue
jobs, the same Stripe webhook delivered to both APIs at once) leaves every job run once in
effect, every webhook applied once, no 5xx, and each instance's metrics equal to the traffic
it answered. Then one API and one worker get SIGTERM mid-traffic: no request that the
surviving instance could serve fails, and no job is lost.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from omnistack_core.testing import LocalOpenAI, LocalResend, LocalStripe
from omnistack_core.testing.issuer import LocalIssuer
from tests.template.fleet import Api, Call, Fleet, Load, Process, Result, p95, wait_until_ready
from tests.template.migration_reports import EVERY_REVISION, applied_revisions
from tests.template.rendering import ANSWER_SETS, REPOSITORY, render, snapshot
from tests.template.test_generated_project import UV, run

pytestmark = pytest.mark.integration

USERS = 8
REQUESTS_PER_PHASE = 240
CHECKOUTS = 4


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    template = snapshot(tmp_path_factory.mktemp("template"))
    answers = {
        **ANSWER_SETS["everything-supabase"],
        "omnistack_core_version": f"@ {REPOSITORY.as_uri()}",
    }
    destination = render(template, tmp_path_factory.mktemp("scale") / "service", answers)
    run(destination, UV, "sync", "--quiet", "--reinstall-package", "omnistack-core")
    return destination


@dataclass(frozen=True)
class Service:
    """The service's settings and the local providers behind them."""

    env: dict[str, str]
    database: str
    issuer: LocalIssuer
    stripe: LocalStripe
    resend: LocalResend


@pytest.fixture
def service(empty_postgres_url: str, redis_url: str) -> Iterator[Service]:
    with (
        LocalIssuer() as issuer,
        LocalStripe() as stripe,
        LocalResend() as resend,
        LocalOpenAI() as openai,
    ):
        env = {
            "ENVIRONMENT": "test",
            "SECRET_KEY": "f" * 40,
            "DATABASE_URL": empty_postgres_url,
            "REDIS_URL": redis_url,
            "LOG_FORMAT": "json",
            "AUTH_PROVIDER": "supabase",
            "SUPABASE_PROJECT_URL": issuer.url,
            "EMAIL_PROVIDER": "resend",
            "RESEND_API_KEY": resend.api_key,
            "RESEND_API_URL": resend.url,
            "STRIPE_API_BASE": stripe.url,
            "STRIPE_SECRET_KEY": stripe.api_key,
            "STRIPE_WEBHOOK_SECRET": stripe.webhook_secret,
            "BILLING_PLANS": json.dumps({"pro": stripe.add_price(lookup_key="pro-monthly")}),
            "BILLING_SUCCESS_URL": "https://example.com/welcome",
            "OPENAI_API_KEY": openai.api_key,
            "OPENAI_BASE_URL": openai.url,
            "AI_DEFAULT_MODEL": "openai:gpt-4o-mini",
        }
        yield Service(env, empty_postgres_url, issuer, stripe, resend)


def mixed_calls(issuer: LocalIssuer, phase: str) -> list[Call]:
    """Signed-in reads, item creations (each queues a job) and welcome emails (a job each)."""
    tokens = [issuer.supabase_token(f"user-{n}") for n in range(USERS)]
    calls = []
    for n in range(REQUESTS_PER_PHASE):
        auth = {"Authorization": f"Bearer {tokens[n % USERS]}"}
        match n % 4:
            case 0 | 3:
                calls.append(Call("me", "GET", "/api/v1/me", headers=auth))
            case 1:
                calls.append(Call("item", "POST", "/api/v1/items", {"name": f"{phase}-{n}"}))
            case _:
                address = f"{phase}-{n}@example.com"
                calls.append(Call("welcome", "POST", "/api/v1/welcome", {"email": address}))
    return calls


EXPECTED_STATUS = {"me": 200, "item": 201, "welcome": 202, "checkout": 200, "webhook": 200}


def test_two_apis_and_two_workers_share_one_database_and_queue(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], service: Service
) -> None:
    issuer, stripe, resend = service.issuer, service.stripe, service.resend
    fleet = Fleet(project, service.env, tmp_path)
    try:
        migrations = fleet.migrate_at_once(3)
        applied = sorted((applied_revisions(out) for out in migrations), key=len)
        # One runner applies the service's first revision and every module branch's.
        assert applied == [frozenset(), frozenset(), EVERY_REVISION]

        apis = [fleet.start_api("api-a"), fleet.start_api("api-b")]
        workers = [fleet.start_worker("worker-1"), fleet.start_worker("worker-2")]
        for api in apis:
            wait_until_ready(api)

        # Phase 1: both APIs up.
        first = asyncio.run(Load(apis).run(mixed_calls(issuer, "one")))
        webhooks = asyncio.run(checkouts_delivered_to_both(apis, issuer, stripe))
        answered = first + webhooks
        assert_no_failures(answered)
        for api in apis:
            assert metrics_of(api) == traffic_of(answered, api.name)
        assert_webhooks_applied_once(apis, issuer, stripe, service.database)

        # Phase 2: one API and one worker stop, gracefully, a quarter into the traffic.
        def stop_one_of_each(done: int) -> None:
            if done == REQUESTS_PER_PHASE // 4:
                apis[0].terminate()
                workers[0].terminate()

        second = asyncio.run(Load(apis).run(mixed_calls(issuer, "two"), stop_one_of_each))
        assert_no_failures(second)
        assert apis[0].wait(timeout=60) == 0, apis[0].output()
        assert workers[0].wait(timeout=60) == 0, workers[0].output()

        all_results = answered + second
        item_ids = asyncio.run(item_ids_in(service.database))
        created = [r.body["id"] for r in all_results if r.call.kind == "item"]
        assert sorted(created) == item_ids  # every acknowledged item, and no other
        runs = job_runs(workers, item_ids)
        assert runs == collections.Counter(item_ids)  # each item's job ran exactly once
        welcomed = [r.call.json["email"] for r in all_results if r.call.kind == "welcome"]
        deliveries = wait_for_deliveries(resend, len(welcomed))
        assert sorted(deliveries) == sorted(welcomed)  # each email once, none lost

        report(capsys, first + second, workers, item_ids)
    finally:
        fleet.stop()


async def checkouts_delivered_to_both(
    apis: list[Api], issuer: LocalIssuer, stripe: LocalStripe
) -> list[Result]:
    """Users check out; each of Stripe's events then reaches both APIs at the same moment."""
    results = []
    async with httpx.AsyncClient(timeout=30) as client:
        for n in range(CHECKOUTS):
            api = apis[n % len(apis)]
            headers = {"Authorization": f"Bearer {issuer.supabase_token(f'buyer-{n}')}"}
            call = Call("checkout", "POST", "/api/v1/billing/checkout", {"plan": "pro"}, headers)
            response = await client.post(f"{api.base}{call.path}", json=call.json, headers=headers)
            results.append(Result(call, api.name, response.status_code, 0.0, response.json()))
            assert response.status_code == 200, response.text
            for event in stripe.complete_checkout(response.json()["id"]):
                body, signed = stripe.signed(event)
                webhook = Call("webhook", "POST", "/api/v1/billing/webhook")
                answers = await asyncio.gather(
                    *(
                        client.post(f"{target.base}{webhook.path}", content=body, headers=signed)
                        for target in apis
                    )
                )
                results += [
                    Result(webhook, target.name, answer.status_code, 0.0, answer.json())
                    for target, answer in zip(apis, answers, strict=True)
                ]
    return results


def assert_no_failures(results: list[Result]) -> None:
    wrong = [
        (result.call.kind, result.instance, result.status, result.body)
        for result in results
        if result.status != EXPECTED_STATUS[result.call.kind]
    ]
    assert wrong == []


def traffic_of(results: list[Result], instance: str) -> dict[tuple[str, str, str], float]:
    """What the load generator got from ``instance``, as http_requests_total counts it."""
    counted: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for result in results:
        if result.instance == instance:
            counted[(result.call.method, result.call.path, str(result.status))] += 1
    return {key: float(value) for key, value in counted.items()}


def metrics_of(api: Api) -> dict[tuple[str, str, str], float]:
    """http_requests_total of every worker process of ``api``, for the load's routes."""
    routes = {"/api/v1/me", "/api/v1/items", "/api/v1/welcome", "/api/v1/billing/checkout"}
    routes.add("/api/v1/billing/webhook")
    text = httpx.get(f"{api.base}/api/v1/public/metrics", timeout=10).text
    found: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "http_requests_total" and labels.get("route") in routes:
                found[(labels["method"], labels["route"], labels["status"])] = sample.value
    return found


def assert_webhooks_applied_once(
    apis: list[Api], issuer: LocalIssuer, stripe: LocalStripe, database: str
) -> None:
    events, processed, subscriptions = asyncio.run(billing_rows(database))
    assert events == processed  # every event stored once and applied
    assert subscriptions == CHECKOUTS  # one subscription per buyer, however many deliveries
    for n in range(CHECKOUTS):
        headers = {"Authorization": f"Bearer {issuer.supabase_token(f'buyer-{n}')}"}
        for api in apis:
            state = httpx.get(f"{api.base}/api/v1/billing/subscription", headers=headers).json()
            assert state["active"] is True, state


async def billing_rows(database: str) -> tuple[int, int, int]:
    import asyncpg  # noqa: PLC0415 - the postgres extra; this is an integration test

    connection = await asyncpg.connect(database.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        events = await connection.fetchval("SELECT count(*) FROM billing_events")
        processed = await connection.fetchval(
            "SELECT count(*) FROM billing_events WHERE processed_at IS NOT NULL"
        )
        subscriptions = await connection.fetchval("SELECT count(*) FROM billing_subscriptions")
    finally:
        await connection.close()
    return events, processed, subscriptions


async def item_ids_in(database: str) -> list[int]:
    import asyncpg  # noqa: PLC0415 - the postgres extra; this is an integration test

    connection = await asyncpg.connect(database.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return sorted(row["id"] for row in await connection.fetch("SELECT id FROM items"))
    finally:
        await connection.close()


def job_runs(
    workers: list[Process], item_ids: list[int], timeout: float = 120
) -> collections.Counter[int]:
    """How many times each item's job ran, across the workers' logs, once all have run."""
    deadline = time.monotonic() + timeout
    while True:
        runs: collections.Counter[int] = collections.Counter()
        for worker in workers:
            for line in worker.output().splitlines():
                record = parse(line)
                if record.get("item_id") is not None and "created" in str(record.get("message")):
                    runs[int(record["item_id"])] += 1
        if set(runs) >= set(item_ids) or time.monotonic() > deadline:
            return runs
        time.sleep(0.5)


def parse(line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def wait_for_deliveries(resend: LocalResend, expected: int, timeout: float = 120) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(resend.deliveries) < expected and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(1)  # a late duplicate, were there one, would arrive now
    return [address for delivery in resend.deliveries for address in delivery.to]


def report(
    capsys: pytest.CaptureFixture[str],
    results: list[Result],
    workers: list[Process],
    item_ids: list[int],
) -> None:
    """The run's figures, on the terminal even when output is captured."""
    lines = [""]
    for instance in sorted({r.instance for r in results}):
        mine = [r for r in results if r.instance == instance]
        latency = p95([r.seconds for r in mine]) * 1000
        lines.append(f"{instance}: {len(mine)} requests answered, p95 {latency:.1f} ms")
    lines.append(f"failed over to the other API: {sum(r.failed_over for r in results)} requests")
    for worker in workers:
        ran = sum("created" in line and "item_id" in line for line in worker.output().splitlines())
        lines.append(f"{worker.name}: {ran} item jobs run")
    lines.append(f"{len(item_ids)} items, each job run once; {len(results)} requests sent")
    with capsys.disabled():
        print("\n".join(lines))  # noqa: T201 - the figures the issue asks to see
