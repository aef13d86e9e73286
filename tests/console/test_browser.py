"""The console in Chromium: the issue's scenarios, as an operator goes through them.

Each page visited is saved as a screenshot under ``build/test-artifacts/console/``; the docs
show them (``docs/images/console/``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from redis import Redis
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from omnistack_core.ai import AIModule, ai_metadata, ai_usage
from omnistack_core.auth import AuthModule, auth_metadata, mint_dev_token
from omnistack_core.billing import billing_metadata
from omnistack_core.console import mint_link
from omnistack_core.db import Database
from omnistack_core.email import EmailModule, SuppressionList, email_metadata
from omnistack_core.jobs import FailedJobs, JobsModule
from omnistack_core.testing.stripe_server import LocalStripe
from tests.console.browser import ARTIFACTS, REPOSITORY, require_chromium, serving
from tests.console.service import SECRET_KEY, console_app, create_tables_at
from tests.console.unreliable_job import JOBS

pytestmark = pytest.mark.browser

T = TypeVar("T")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = require_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    yield opened
    context.close()


def shoot(page: Page, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def sign_in(page: Page, base: str, operator: str = "oncall@example.com") -> None:
    token = mint_link(SECRET_KEY, operator, minutes=5)
    page.goto(f"{base}/console/login?token={token}")
    page.get_by_role("button", name="Sign in to the console").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")


def unlabelled_controls(page: Page) -> list[str]:
    """Form controls a screen reader cannot name: no label, no aria-label."""
    result: list[str] = page.evaluate(
        """() => [...document.querySelectorAll(
                'input:not([type=hidden]), select, textarea, button')]
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                            && !el.textContent.trim())
            .map((el) => el.outerHTML)"""
    )
    return result


@pytest.fixture
def environment(redis_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "ENVIRONMENT": "test",
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/worker.db",
        "REDIS_URL": redis_url,
        "JOBS_TRACE_URL": redis_url,
        "JOBS_QUEUE_NAME": f"test:{uuid.uuid4().hex[:8]}",
        "JOBS_HEALTH_CHECK_SECONDS": "1",
        "LOG_FORMAT": "json",
    }


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def jobs_console(environment: dict[str, str], tmp_path: Path) -> Iterator[str]:
    app = console_app(
        [JobsModule(jobs=JOBS)],
        redis_url=environment["REDIS_URL"],
        jobs_queue_name=environment["JOBS_QUEUE_NAME"],
        database_url=f"sqlite+aiosqlite:///{tmp_path}/api.db",
    )
    with serving(app) as base:
        yield base


@pytest.fixture
def start_worker(environment: dict[str, str]) -> Iterator[Callable[[], None]]:
    workers: list[subprocess.Popen[str]] = []

    def start() -> None:
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "arq", "tests.console.worker_service.WorkerSettings"],
                cwd=REPOSITORY,
                env={**os.environ, **environment},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )

    yield start
    for worker in workers:
        worker.kill()
        worker.communicate(timeout=30)


def off_the_loop(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``work()`` on an event loop of its own: Playwright's sync API holds this thread's."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work()).result()


def enqueue(environment: dict[str, str], *args: Any) -> str:
    from arq import create_pool  # noqa: PLC0415

    from omnistack_core.jobs.serialization import dumps, loads  # noqa: PLC0415
    from omnistack_core.jobs.worker import redis_settings  # noqa: PLC0415

    async def put() -> str:
        pool = await create_pool(
            redis_settings(environment["REDIS_URL"]), job_serializer=dumps, job_deserializer=loads
        )
        try:
            job = await pool.enqueue_job(
                "console.unreliable", *args, _queue_name=environment["JOBS_QUEUE_NAME"]
            )
            assert job is not None
            return job.job_id
        finally:
            await pool.aclose()

    return off_the_loop(put)


def record_failure(environment: dict[str, str], job_id: str) -> None:
    from redis.asyncio import Redis as AsyncRedis  # noqa: PLC0415

    async def record() -> None:
        client = AsyncRedis.from_url(environment["REDIS_URL"])
        try:
            await FailedJobs(client, environment["JOBS_QUEUE_NAME"]).record(
                job_id,
                "console.unreliable",
                args=["k", "someone@example.com"],
                kwargs={},
                error=ValueError("the provider refused"),
                attempts=1,
            )
        finally:
            await client.aclose()

    off_the_loop(record)


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_an_anonymous_visitor_is_sent_to_the_login_page(page: Page, jobs_console: str) -> None:
    page.goto(f"{jobs_console}/console/jobs/failed")
    assert page.url == f"{jobs_console}/console/login?next=%2Fconsole%2Fjobs%2Ffailed"
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.get_by_text("omnistack console-link").first).to_be_visible()
    shoot(page, "login")


def test_log_in_with_a_console_link_by_keyboard_alone(page: Page, jobs_console: str) -> None:
    token = mint_link(SECRET_KEY, "oncall@example.com", minutes=5)
    page.goto(f"{jobs_console}/console/login?token={token}")
    shoot(page, "login-link")
    # Tab from the top: the skip link, then the sign-in button; Enter submits.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Sign in to the console"
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    expect(page.get_by_role("navigation", name="Console sections")).to_be_visible()
    assert "o***@example.com" not in page.content()  # the operator sees their own name
    assert unlabelled_controls(page) == []
    shoot(page, "overview")
    # The cookie the browser keeps is HttpOnly, strict and expires.
    cookie = next(c for c in page.context.cookies() if c["name"] == "omnistack_console")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    assert cookie["expires"] > time.time()
    # The link is spent: a second use is refused.
    page.goto(f"{jobs_console}/console/login?token={token}")
    page.get_by_role("button", name="Sign in to the console").click()
    expect(page.get_by_role("alert")).to_contain_text("already used")


def test_see_a_failed_job_retry_it_and_watch_it_run(
    page: Page,
    jobs_console: str,
    environment: dict[str, str],
    redis: Redis,
    start_worker: Callable[[], None],
) -> None:
    start_worker()
    redis.set("broken:invoice-7", 1)
    job_id = enqueue(environment, "invoice-7", "customer@example.com")
    failed = FailedJobs(redis, environment["JOBS_QUEUE_NAME"])  # type: ignore[arg-type]
    wait_until(lambda: redis.hexists(failed.key, job_id), "the job to fail")

    sign_in(page, jobs_console)
    page.get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Jobs")
    shoot(page, "jobs")
    page.get_by_role("link", name="1 failed jobs").click()
    row = page.get_by_role("row").filter(has_text=job_id)
    expect(row).to_contain_text("console.unreliable")
    expect(row).to_contain_text("ValueError: the provider refused invoice-7")
    assert "customer@example.com" not in page.content()
    assert unlabelled_controls(page) == []
    shoot(page, "jobs-failed")
    row.get_by_role("link", name="console.unreliable").click()
    expect(page.get_by_text("in unreliable")).to_be_visible()  # where it failed
    expect(page.get_by_text("c***@example.com").first).to_be_visible()
    shoot(page, "job-failed")

    redis.delete("broken:invoice-7")  # the provider is back
    page.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("status")).to_have_text("Enqueued 1 failed job(s) again.")
    expect(page.get_by_role("row").filter(has_text=job_id)).to_have_count(0)

    wait_until(lambda: redis.llen("ran:invoice-7") == 1, "the retried job to run")
    assert redis.lrange("ran:invoice-7", 0, -1)[0].decode().startswith(f"{job_id}:retry:")
    page.get_by_role("link", name="Jobs", exact=True).click()
    expect(page.get_by_text("The queue is empty.")).to_be_visible()
    # One row: the one worker's own heartbeat, with how long ago it beat.
    expect(page.get_by_role("row").filter(has_text=" s ago")).to_have_count(1)


def test_discard_asks_first_and_a_post_without_the_csrf_token_is_refused(
    page: Page, jobs_console: str, environment: dict[str, str], redis: Redis
) -> None:
    record_failure(environment, "job-a")
    record_failure(environment, "job-b")
    sign_in(page, jobs_console)
    page.goto(f"{jobs_console}/console/jobs/failed")

    # Without its CSRF token the same form is refused, and nothing changes.
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach((e) => e.remove())")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Discard console.unreliable job-a").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Refused")
    expect(page.get_by_role("alert")).to_contain_text("CSRF")
    shoot(page, "refused")
    failed = FailedJobs(redis, environment["JOBS_QUEUE_NAME"])  # type: ignore[arg-type]
    assert redis.hlen(failed.key) == 2

    page.goto(f"{jobs_console}/console/jobs/failed")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Discard console.unreliable job-a").click()
    assert redis.hlen(failed.key) == 2  # dismissed: nothing sent
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Discard console.unreliable job-a").click()
    expect(page.get_by_role("status")).to_have_text("Discarded the failed job.")
    assert not redis.hexists(failed.key, "job-a")
    assert redis.hexists(failed.key, "job-b")


def test_a_signed_in_non_admin_gets_403_and_an_admin_gets_in(
    browser: Browser, tmp_path: Path
) -> None:
    app = console_app(
        [AuthModule(users_table=None)],
        auth_provider="dev",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/auth.db",
    )
    member = mint_dev_token(SECRET_KEY, "user-member", roles=["member"])
    admin = mint_dev_token(SECRET_KEY, "user-admin", roles=["admin"])
    with serving(app) as base:
        context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {member}"})
        page = context.new_page()
        response = page.goto(f"{base}/console")
        assert response is not None
        assert response.status == 403
        expect(page.get_by_role("alert")).to_contain_text("admin")
        shoot(page, "forbidden")
        context.close()
        context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {admin}"})
        page = context.new_page()
        response = page.goto(f"{base}/console")
        assert response is not None
        assert response.status == 200
        expect(page.get_by_text("user-admin")).to_be_visible()
        context.close()


@pytest.mark.parametrize("enabled", [False, True])
def test_the_console_is_absent_in_production_unless_enabled(
    page: Page, tmp_path: Path, enabled: bool
) -> None:
    app = console_app(
        environment="production",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/prod.db",
        console_enabled=enabled,
    )
    with serving(app) as base:
        response = page.goto(f"{base}/console")
        assert response is not None
        if enabled:
            assert response.status == 200
            expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
        else:
            assert response.status == 404


@pytest.fixture
def billing_console(
    local_stripe: LocalStripe, empty_postgres_url: str
) -> Iterator[tuple[str, dict[str, bool]]]:
    from tests.console.test_billing_pages import BROKEN, billing_console  # noqa: PLC0415

    BROKEN["on"] = True
    app = billing_console(local_stripe, empty_postgres_url)
    off_the_loop(lambda: create_tables_at(empty_postgres_url, auth_metadata, billing_metadata))
    with serving(app) as base:
        yield base, BROKEN


def test_replay_a_failed_webhook_and_see_it_processed(
    page: Page, billing_console: tuple[str, dict[str, bool]], local_stripe: LocalStripe
) -> None:
    base, broken = billing_console
    stripe = local_stripe
    token = mint_dev_token(SECRET_KEY, "user-ada", email="ada@example.com")
    with httpx.Client(base_url=base) as api:
        checkout = api.post(
            "/api/v1/billing/checkout",
            json={"plan": "team"},
            headers={"Authorization": f"Bearer {token}"},
        )
        stripe.complete_checkout(checkout.json()["id"])
        (subscription_id,) = stripe.subscriptions
        stripe.advance(5)
        event = stripe.update_subscription(subscription_id, quantity=2)
        body, headers = stripe.signed(event)
        assert api.post("/api/v1/billing/webhook", content=body, headers=headers).status_code == 500

    sign_in(page, base)
    page.get_by_role("link", name="Billing").click()
    page.get_by_label("Outcome").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    row = page.get_by_role("row").filter(has_text=event["id"])
    expect(row).to_contain_text("failed")
    expect(row).to_contain_text("RuntimeError: the warehouse for a***@example.com is closed")
    assert unlabelled_controls(page) == []
    shoot(page, "billing")
    row.get_by_role("link", name=event["id"]).click()
    expect(page.get_by_text("customer.subscription.updated").first).to_be_visible()
    assert "ada@example.com" not in page.content()
    shoot(page, "billing-event")

    broken["on"] = False  # the warehouse is open again
    page.get_by_role("button", name="Replay this event").click()
    expect(page.get_by_role("status")).to_have_text("The event was processed.")
    expect(page.locator(".facts")).to_contain_text("processed")
    expect(page.get_by_role("button", name="Replay this event")).to_have_count(0)

    page.goto(f"{base}/console/billing/users?user_id=user-ada")
    expect(page.get_by_text("Stripe customer")).to_be_visible()
    shoot(page, "billing-user")


def test_remove_a_suppression(page: Page, empty_postgres_url: str) -> None:
    async def prepare() -> None:
        await create_tables_at(empty_postgres_url, email_metadata)
        engine = create_async_engine(empty_postgres_url)
        try:
            listed = SuppressionList(Database(engine))
            await listed.add("ada@example.com", "bounced", detail="mailbox full")
            await listed.add("bob@example.com", "complained")
        finally:
            await engine.dispose()

    async def suppressed() -> set[str]:
        engine = create_async_engine(empty_postgres_url)
        try:
            return await SuppressionList(Database(engine)).find(
                ["ada@example.com", "bob@example.com"]
            )
        finally:
            await engine.dispose()

    off_the_loop(prepare)
    app = console_app([EmailModule()], database_url=empty_postgres_url)
    with serving(app) as base:
        sign_in(page, base)
        page.get_by_role("link", name="Email").click()
        page.get_by_label("Address starts with").fill("ada")
        page.get_by_label("Address starts with").press("Enter")
        expect(page.get_by_role("row").filter(has_text="ada@example.com")).to_contain_text(
            "mailbox full"
        )
        expect(page.get_by_role("row").filter(has_text="bob@example.com")).to_have_count(0)
        assert unlabelled_controls(page) == []
        shoot(page, "email")
        page.get_by_role("link", name="Remove the suppression of ada@example.com").click()
        expect(page.get_by_text("will be sent again")).to_be_visible()
        shoot(page, "email-remove")
        assert off_the_loop(suppressed) == {"ada@example.com", "bob@example.com"}
        page.get_by_role("button", name="Remove the suppression").click()
        expect(page.get_by_role("status")).to_have_text(
            "ada@example.com is no longer suppressed: email to it is sent again."
        )
        assert off_the_loop(suppressed) == {"bob@example.com"}
        page.get_by_role("link", name="Delivery events").click()
        expect(page.get_by_text("No delivery events.")).to_be_visible()
        shoot(page, "email-events")
        page.get_by_role("link", name="the sends page").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Email sends")
        expect(page.get_by_text("No sends.")).to_be_visible()
        assert unlabelled_controls(page) == []
        shoot(page, "email-sends")


def test_ai_spend_by_model_and_a_quota_reset(
    page: Page, empty_postgres_url: str, redis_url: str
) -> None:
    async def prepare() -> None:
        await create_tables_at(empty_postgres_url, ai_metadata)
        engine = create_async_engine(empty_postgres_url)
        now = datetime.now(UTC)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    insert(ai_usage),
                    [
                        {
                            "id": f"u{number}",
                            "user_id": f"user-{number % 3}",
                            "provider": "openai" if number % 2 else "anthropic",
                            "model": "gpt-4o-mini" if number % 2 else "claude-haiku",
                            "input_tokens": 1000,
                            "output_tokens": 100,
                            "cached_tokens": 0,
                            "cost": 0.002,
                            "request_id": None,
                            "created_at": now - timedelta(minutes=number),
                        }
                        for number in range(12)
                    ],
                )
        finally:
            await engine.dispose()

    off_the_loop(prepare)
    app = console_app(
        [AIModule()],
        database_url=empty_postgres_url,
        redis_url=redis_url,
        ai_record_usage=True,
        ai_quota_tokens=100_000,
    )
    with serving(app) as base:
        sign_in(page, base)
        page.get_by_role("link", name="AI").click()
        expect(page.get_by_role("row").filter(has_text="user-1")).to_contain_text("4")
        page.get_by_label("Totals by").select_option("model")
        page.get_by_role("button", name="Show").click()
        expect(page.get_by_role("row").filter(has_text="openai:gpt-4o-mini")).to_contain_text(
            "0.0120"
        )
        assert unlabelled_controls(page) == []
        shoot(page, "ai")
        page.get_by_role("link", name="A user's quota").click()
        page.get_by_label("User id").fill("user-1")
        page.get_by_label("User id").press("Enter")
        expect(page.locator("#tokens-used")).to_have_text("0")
        shoot(page, "ai-quota")
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Reset this user's quota").click()
        expect(page.get_by_role("status")).to_contain_text("Quota reset")


def test_pages_and_actions_work_without_javascript(
    browser: Browser, jobs_console: str, environment: dict[str, str], redis: Redis
) -> None:
    record_failure(environment, "job-nojs")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, jobs_console)
        for section in ("Jobs", "Overview"):
            page.get_by_role("link", name=section, exact=True).click()
            expect(page.get_by_role("heading", level=1)).to_have_text(section)
        page.goto(f"{jobs_console}/console/jobs/failed")
        page.get_by_role("link", name="console.unreliable").click()
        expect(page.get_by_text("ValueError: the provider refused")).to_be_visible()
        page.get_by_role("button", name="Retry").click()
        expect(page.get_by_role("status")).to_have_text("Enqueued 1 failed job(s) again.")
        failed = FailedJobs(redis, environment["JOBS_QUEUE_NAME"])  # type: ignore[arg-type]
        assert not redis.hexists(failed.key, "job-nojs")
    finally:
        context.close()
