from __future__ import annotations

import asyncio
import time

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from omnistack_core import Settings, create_app, load_settings
from omnistack_core.health import HealthCheck, register_check, run_checks
from omnistack_core.testing import app_client

DB_PASSWORD = "hunter2-db-password"


async def hang_forever(app: Starlette) -> None:
    await asyncio.Event().wait()


async def ignore_cancellation(app: Starlette) -> None:
    # A badly written check: it swallows its cancellation and carries on.
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            continue


class KeyedSettings(Settings):
    """A service whose module holds a secret of its own, as billing does."""

    stripe_secret_key: SecretStr | None = None


async def leak_credentials(app: Starlette) -> None:
    raise ConnectionError(
        f"could not reach postgresql://app:{DB_PASSWORD}@db:5432/app with key sk_test_abcdef"
    )


async def test_liveness_is_200_with_no_store() -> None:
    async with app_client(create_app()) as client:
        response = await client.get("/api/v1/public/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"


async def test_readiness_reports_each_check() -> None:
    async with app_client(create_app()) as client:
        response = await client.get("/api/v1/public/health/ready")

    body = response.json()
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["database"]["latency_ms"] >= 0


async def test_a_hanging_check_fails_readiness_within_its_timeout() -> None:
    app = create_app()
    register_check(app, HealthCheck("stuck", hang_forever, timeout=0.2))

    async with app_client(app) as client:
        started = time.monotonic()
        ready = await client.get("/api/v1/public/health/ready")
        elapsed = time.monotonic() - started
        live = await client.get("/api/v1/public/health")

    assert ready.status_code == 503
    assert ready.json()["checks"]["stuck"]["error"] == "timed out after 0.2 s"
    assert ready.json()["checks"]["database"]["status"] == "ok"
    assert elapsed < 2
    assert live.status_code == 200


async def test_a_check_that_ignores_cancellation_cannot_hold_the_response() -> None:
    app = Starlette()
    started = time.monotonic()

    [result] = await run_checks(app, [HealthCheck("stubborn", ignore_cancellation, timeout=0.1)])

    assert time.monotonic() - started < 2
    assert (result.status, result.error) == ("failed", "timed out after 0.1 s")


async def test_a_non_critical_failure_is_degraded_and_keeps_the_service_ready() -> None:
    app = create_app()
    register_check(app, HealthCheck("cache", hang_forever, timeout=0.1, critical=False))

    async with app_client(app) as client:
        response = await client.get("/api/v1/public/health/ready")

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["cache"]["status"] == "degraded"


async def test_check_errors_never_show_passwords_or_secrets() -> None:
    app = create_app(load_settings(KeyedSettings, stripe_secret_key="sk_test_abcdef"))
    register_check(app, HealthCheck("leaky", leak_credentials))

    async with app_client(app) as client:
        response = await client.get("/api/v1/public/health/ready")

    error = response.json()["checks"]["leaky"]["error"]
    assert error.startswith("ConnectionError: could not reach postgresql://app:***@db:5432/app")
    assert DB_PASSWORD not in response.text
    assert "sk_test_abcdef" not in response.text


async def test_readiness_is_503_when_the_database_port_is_closed() -> None:
    pytest.importorskip("asyncpg", reason="a Postgres URL needs the postgres extra")
    settings = load_settings(database_url=f"postgres://app:{DB_PASSWORD}@127.0.0.1:1/app")
    app = create_app(settings)

    async with app_client(app) as client:
        ready = await client.get("/api/v1/public/health/ready")
        live = await client.get("/api/v1/public/health")

    assert ready.status_code == 503
    assert ready.json()["checks"]["database"]["status"] == "failed"
    assert DB_PASSWORD not in ready.text
    assert live.status_code == 200


def test_check_names_are_unique() -> None:
    app = create_app()
    with pytest.raises(ValueError, match="'database' is already registered"):
        register_check(app, HealthCheck("database", hang_forever))


def production_settings(**values: object) -> Settings:
    return load_settings(
        environment="production",
        secret_key="p" * 40,
        database_url="sqlite+aiosqlite:///:memory:",
        **values,
    )


async def test_strangers_get_each_checks_status_and_no_error_text() -> None:
    app = create_app(production_settings(metrics_token="ops-token-123"))
    register_check(app, HealthCheck("leaky", leak_credentials))

    async with app_client(app) as client:
        stranger = await client.get("/api/v1/public/health/ready")
        wrong = await client.get(
            "/api/v1/public/health/ready", headers={"Authorization": "Bearer not-it"}
        )

    assert stranger.status_code == 503
    assert stranger.json() == {
        "status": "failed",
        "checks": {"database": {"status": "ok"}, "leaky": {"status": "failed"}},
    }
    assert wrong.json() == stranger.json()


async def test_operators_presenting_the_metrics_token_get_the_error_text() -> None:
    app = create_app(production_settings(metrics_token="ops-token-123"))
    register_check(app, HealthCheck("leaky", leak_credentials))

    async with app_client(app) as client:
        response = await client.get(
            "/api/v1/public/health/ready", headers={"Authorization": "Bearer ops-token-123"}
        )

    check = response.json()["checks"]["leaky"]
    assert check["status"] == "failed"
    assert check["error"].startswith("ConnectionError: could not reach")
    assert DB_PASSWORD not in response.text
    assert "latency_ms" in response.json()["checks"]["database"]


async def test_a_failing_check_is_logged_once_while_it_fails_and_again_when_it_passes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failing = True

    async def flaky_dependency(app: Starlette) -> None:
        if failing:
            raise ConnectionError("refused by warehouse.internal:5000")

    app = create_app(production_settings(health_cache_seconds=0))
    register_check(app, HealthCheck("warehouse", flaky_dependency))

    with caplog.at_level("INFO", logger="omnistack.health"):
        async with app_client(app) as client:
            for _ in range(5):
                await client.get("/api/v1/public/health/ready")
            failing = False
            recovered = await client.get("/api/v1/public/health/ready")

    lines = [
        (record.levelname, record.getMessage())
        for record in caplog.records
        if record.name == "omnistack.health"
    ]
    assert recovered.status_code == 200
    assert lines == [
        (
            "WARNING",
            "Readiness check warehouse failed: ConnectionError: refused by warehouse.internal:5000",
        ),
        ("INFO", "Readiness check warehouse passes again"),
    ]
