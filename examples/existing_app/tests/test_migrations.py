"""The app's own Alembic runs its revisions and the branches of the modules it installs."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from examples.existing_app.tests.notes_app import alembic

APP_TABLES = {"users", "notes"}
MODULE_TABLES = {
    # The auth branch's table, under the name AuthModule(users_table=...) gives it.
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


def revisions_in(database_url: str) -> set[str]:
    async def rows() -> set[str]:
        engine = create_async_engine(database_url)
        async with engine.connect() as connection:
            found = await connection.execute(text("SELECT version_num FROM alembic_version"))
            revisions = set(found.scalars())
        await engine.dispose()
        return revisions

    return asyncio.run(rows())


def test_upgrade_heads_makes_the_apps_tables_and_the_modules_and_nothing_drifts(
    empty_postgres_url: str,
) -> None:
    upgraded = alembic(empty_postgres_url, "upgrade", "heads")
    checked = alembic(empty_postgres_url, "check")
    tables = tables_in(empty_postgres_url)
    revisions = revisions_in(empty_postgres_url)
    downgraded = alembic(empty_postgres_url, "downgrade", "base")

    assert upgraded.returncode == 0, upgraded.stderr
    assert tables == {"alembic_version", *APP_TABLES, *MODULE_TABLES}
    # One revision per branch: the app's own, and each module's head, shipped in the library.
    assert revisions == {"0001", "omnistack_auth_0001", "omnistack_billing_0002"}
    # autogenerate compares the database with the app's models and the modules' metadata.
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr
    assert downgraded.returncode == 0, downgraded.stderr
    assert tables_in(empty_postgres_url) == {"alembic_version"}


def test_downgrading_the_apps_branch_by_its_label_leaves_the_modules_tables(
    empty_postgres_url: str,
) -> None:
    alembic(empty_postgres_url, "upgrade", "heads")

    downgraded = alembic(empty_postgres_url, "downgrade", "notes@-1")

    assert downgraded.returncode == 0, downgraded.stderr
    assert tables_in(empty_postgres_url) == {"alembic_version", *MODULE_TABLES}
    assert revisions_in(empty_postgres_url) == {"omnistack_auth_0001", "omnistack_billing_0002"}
