"""The locked upgrade and the Alembic environment, on a small project written here."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from omnistack_core import load_settings
from omnistack_core.cli import main
from tests.db.migration_project import write_project

pytest.importorskip("alembic", reason="needs the migrations extra")
from omnistack_core.db.migrations import (
    MIGRATION_LOCK_KEY,
    MigrationError,
    upgrade,
)

REVISIONS = {
    "0001_notes.py": """
        revision = "0001_notes"
        down_revision = None

        def upgrade():
            op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True))

        def downgrade():
            op.drop_table("notes")
    """,
    "0002_tags.py": """
        revision = "0002_tags"
        down_revision = "0001_notes"

        def upgrade():
            op.create_table("tags", sa.Column("id", sa.Integer, primary_key=True))

        def downgrade():
            op.drop_table("tags")
    """,
}

BROKEN = """
    revision = "0003_broken"
    down_revision = "0002_tags"

    def upgrade():
        op.create_table("half", sa.Column("id", sa.Integer, primary_key=True))
        op.execute("THIS IS NOT SQL")

    def downgrade():
        op.drop_table("half")
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/migrations.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def clean_postgres(postgres_url: str) -> str:
    """The session's Postgres database with no tables left by an earlier test."""
    await _drop_tables(postgres_url)
    return postgres_url


def test_upgrade_applies_every_revision_then_has_nothing_to_do(
    tmp_path: Path, database_url: str
) -> None:
    if "postgresql" in database_url:
        asyncio.run(_drop_tables(database_url))
    config = write_project(tmp_path, REVISIONS)
    settings = load_settings(database_url=database_url)

    first = upgrade(config, settings=settings)
    second = upgrade(config, settings=settings)

    assert (first.before, first.after, first.applied) == (
        None,
        "0002_tags",
        ("0001_notes", "0002_tags"),
    )
    assert (second.before, second.after, second.applied) == ("0002_tags", "0002_tags", ())


async def _drop_tables(url: str) -> None:
    import asyncpg  # noqa: PLC0415 - the postgres extra; these tests are integration tests

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await connection.execute("DROP TABLE IF EXISTS notes, tags, half, alembic_version")
    finally:
        await connection.close()


def test_a_failing_revision_is_named_and_the_earlier_ones_stay_applied(
    tmp_path: Path, clean_postgres: str
) -> None:
    config = write_project(tmp_path, {**REVISIONS, "0003_broken.py": BROKEN})
    settings = load_settings(database_url=clean_postgres)

    with pytest.raises(MigrationError, match="migration 0003_broken failed") as caught:
        upgrade(config, settings=settings)

    assert caught.value.revision == "0003_broken"
    state = asyncio.run(_state(clean_postgres))
    assert state == ("0002_tags", False)  # 0003 rolled back whole: no half table


async def _state(url: str) -> tuple[str, bool]:
    import asyncpg  # noqa: PLC0415 - the postgres extra; these tests are integration tests

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        version = await connection.fetchval("SELECT version_num FROM alembic_version")
        half = await connection.fetchval("SELECT to_regclass('half') IS NOT NULL")
    finally:
        await connection.close()
    return version, half


def test_upgrade_gives_up_when_the_lock_stays_taken(tmp_path: Path, clean_postgres: str) -> None:
    config = write_project(tmp_path, REVISIONS)
    settings = load_settings(database_url=clean_postgres)

    async def holding_the_lock() -> None:
        import asyncpg  # noqa: PLC0415 - the postgres extra; these tests are integration tests

        holder = await asyncpg.connect(clean_postgres.replace("postgresql+asyncpg", "postgresql"))
        try:
            await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
            with pytest.raises(MigrationError, match="held the migration lock for more than 1 s"):
                await asyncio.to_thread(upgrade, config, settings=settings, lock_timeout=1)
        finally:
            await holder.close()

    asyncio.run(holding_the_lock())


def test_the_cli_prints_before_applied_and_after(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_project(tmp_path, REVISIONS)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cli.db")

    status = main(["db", "upgrade", "--config", str(config)])

    output = capsys.readouterr().out
    assert status == 0
    assert "before:  (empty database)" in output
    assert "applied: 0001_notes, 0002_tags" in output
    assert "after:   0002_tags" in output


def test_the_cli_exits_1_naming_the_failing_revision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_project(tmp_path, {**REVISIONS, "0003_broken.py": BROKEN})
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/broken.db")

    status = main(["db", "upgrade", "--config", str(config)])

    assert status == 1
    assert "error: migration 0003_broken failed" in capsys.readouterr().err
