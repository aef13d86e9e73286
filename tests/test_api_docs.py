"""``/docs``, ``/redoc`` and ``/openapi.json``: served in development, off in production."""

from __future__ import annotations

import pytest

from omnistack_core import create_app, load_settings
from omnistack_core.testing import app_client

DOCS = ("/docs", "/redoc", "/openapi.json")


def deployed(environment: str, **values: object) -> dict[str, object]:
    return {
        "environment": environment,
        "secret_key": "d" * 40,
        "database_url": "sqlite+aiosqlite:///:memory:",
        **values,
    }


async def statuses(**settings: object) -> list[int]:
    app = create_app(load_settings(**settings))
    async with app_client(app) as client:
        return [(await client.get(path)).status_code for path in DOCS]


async def test_development_serves_the_docs() -> None:
    assert await statuses() == [200, 200, 200]


@pytest.mark.parametrize("environment", ["staging", "production"])
async def test_deployed_environments_hide_the_docs_by_default(environment: str) -> None:
    assert await statuses(**deployed(environment)) == [404, 404, 404]


async def test_api_docs_enabled_serves_them_in_production() -> None:
    assert await statuses(**deployed("production", api_docs_enabled=True)) == [200, 200, 200]


def test_the_schema_can_still_be_exported_when_it_is_not_served() -> None:
    app = create_app(load_settings(**deployed("production")))

    assert "/api/v1/public/health" in app.openapi()["paths"]
