"""Test setup: a test environment, a migrated database, the app served in-process.

Without DATABASE_URL the tests use a throw-away SQLite file; CI points DATABASE_URL at
PostgreSQL and the same tests run there. Either way the database is migrated with the
service's own migrations, exactly as a deploy migrates it.
"""

import os
import secrets
import tempfile
from collections.abc import AsyncIterator

import httpx
import pytest

os.environ.setdefault("ENVIRONMENT", "test")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(48))
os.environ.setdefault("AUTH_PROVIDER", "dev")
os.environ.setdefault(
    "DATABASE_URL", f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='tests-')}/test.db"
)

pytest_plugins = ["omnistack_core.testing.pytest_plugin"]


@pytest.fixture(scope="session", autouse=True)
def migrated_database() -> None:
    """Apply every migration once, before the first test."""
    from omnistack_core.db.migrations import upgrade

    upgrade("alembic.ini")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client for the app, started (lifespan included) for the test."""
    from omnistack_core.testing import app_client

    from app.main import app

    async with app_client(app) as started:
        yield started
