"""The app's own Alembic makes its tables and the modules', as their metadata describes them."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from examples.existing_app.tests.notes_app import alembic

MODULE_TABLES = {
    "omnistack_users",
    "billing_customers",
    "billing_entitlements",
    "billing_events",
    "billing_subscriptions",
}


def tables_in(database_url: str) -> set[str]:
    async def names() -> set[str]:
        engine = create_async_engine(database_url)
        async with engine.connect() as connection:
            found = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        await engine.dispose()
        return set(found)

    return asyncio.run(names())


def test_upgrade_makes_the_apps_tables_and_the_modules_and_nothing_drifts(
    empty_postgres_url: str,
) -> None:
    upgraded = alembic(empty_postgres_url, "upgrade", "head")
    checked = alembic(empty_postgres_url, "check")
    tables = tables_in(empty_postgres_url)
    downgraded = alembic(empty_postgres_url, "downgrade", "base")

    assert upgraded.returncode == 0, upgraded.stderr
    assert tables == {"alembic_version", "users", "notes", *MODULE_TABLES}
    # autogenerate compares the database with the app's models and the modules' metadata.
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr
    assert downgraded.returncode == 0, downgraded.stderr
    assert tables_in(empty_postgres_url) == {"alembic_version"}
