"""readiness_report(): the readiness of an app the modules were installed in without create_app."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from starlette.applications import Starlette

from omnistack_core import Module, ModuleSettings, create_app, install
from omnistack_core.health import (
    CheckResult,
    HealthCheck,
    ReadinessReport,
    readiness_report,
    register_check,
)
from omnistack_core.testing import app_client

WAREHOUSE_TOKEN = "wh-token-0123456789"


class WarehouseSettings(ModuleSettings):
    module = "warehouse"

    warehouse_token: SecretStr | None = None


class Warehouse(Module[WarehouseSettings]):
    """A module whose check fails with its own secret in the message."""

    name = "warehouse"
    settings_class = WarehouseSettings

    def __init__(self, *, healthy: bool = True) -> None:
        self.healthy = healthy
        self.probes = 0

    def health_checks(self, settings: WarehouseSettings) -> Sequence[HealthCheck]:
        async def warehouse(app: Starlette) -> None:
            self.probes += 1
            if not self.healthy:
                token = settings.warehouse_token
                raise ConnectionError(
                    f"warehouse refused token {token and token.get_secret_value()}"
                )

        return [HealthCheck("warehouse", warehouse)]


def existing_app(module: Warehouse) -> FastAPI:
    """An app of its own, no create_app: the module's variables read under a prefix."""
    app = FastAPI()
    install(app, [module], env_prefix="SHOP_", env_file=None)
    return app


@pytest.fixture(autouse=True)
def warehouse_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_WAREHOUSE_TOKEN", WAREHOUSE_TOKEN)


async def test_an_installed_modules_checks_are_reported_without_create_app() -> None:
    app = existing_app(Warehouse())

    async with app_client(app):
        report = await readiness_report(app)

    assert report.status == "ok"
    assert report.ready
    assert [(result.name, result.status) for result in report.checks] == [("warehouse", "ok")]


async def test_a_failing_critical_check_is_not_ready_and_its_error_hides_the_modules_secret() -> (
    None
):
    app = existing_app(Warehouse(healthy=False))

    async with app_client(app):
        report = await readiness_report(app)

    assert report.status == "failed"
    assert not report.ready
    (result,) = report.checks
    assert result.error == "ConnectionError: warehouse refused token ***"


async def test_the_apps_own_checks_run_beside_the_modules() -> None:
    app = existing_app(Warehouse())

    async def search(app: Starlette) -> None:
        raise TimeoutError

    register_check(app, HealthCheck("search", search, critical=False))
    async with app_client(app):
        report = await readiness_report(app)

    assert report.status == "degraded"
    assert report.ready
    assert report.as_dict()["checks"]["search"]["status"] == "degraded"


async def test_reports_within_a_second_share_one_run_of_the_checks() -> None:
    module = Warehouse()
    app = existing_app(module)

    async with app_client(app):
        first = await readiness_report(app)
        second = await readiness_report(app)

    assert module.probes == 1
    assert second.checks == first.checks


async def test_a_draining_app_reports_draining_without_running_checks() -> None:
    module = Warehouse()
    app = existing_app(module)

    async with app_client(app):
        app.state.draining = True
        report = await readiness_report(app)

    assert report == ReadinessReport("draining")
    assert not report.ready
    assert module.probes == 0


async def test_the_endpoint_of_create_app_answers_the_same_report() -> None:
    app = create_app(modules=[Warehouse()])

    async with app_client(app) as client:
        response = await client.get("/api/v1/public/health/ready")
        report = await readiness_report(app)

    assert response.json() == report.as_dict(detail=True)  # development: every caller
    assert set(response.json()["checks"]) == {"database", "warehouse"}


def test_as_dict_leaves_out_the_error_of_a_passing_check() -> None:
    report = ReadinessReport(
        "failed",
        (CheckResult("database", "ok", 1.5), CheckResult("redis", "failed", 2.0, "timed out")),
    )

    assert report.as_dict(detail=True) == {
        "status": "failed",
        "checks": {
            "database": {"status": "ok", "latency_ms": 1.5},
            "redis": {"status": "failed", "latency_ms": 2.0, "error": "timed out"},
        },
    }


def test_as_dict_gives_only_statuses_without_detail() -> None:
    report = ReadinessReport(
        "failed",
        (CheckResult("database", "ok", 1.5), CheckResult("redis", "failed", 2.0, "timed out")),
    )

    assert report.as_dict() == {
        "status": "failed",
        "checks": {"database": {"status": "ok"}, "redis": {"status": "failed"}},
    }
