"""The same session code on SQLite and on real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI, HTTPException
from sqlalchemy import ForeignKey, String, UniqueConstraint, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateTable

from omnistack_core import create_app, load_settings
from omnistack_core.db import Database, DbSession, new_metadata
from omnistack_core.testing import app_client


class Model(DeclarativeBase):
    metadata = new_metadata()


class Author(Model):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class Note(Model):
    __tablename__ = "notes"
    __table_args__ = (UniqueConstraint("author_id", "title"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    title: Mapped[str] = mapped_column(String(100), index=True)


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)],
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/test.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database.from_settings(load_settings(database_url=database_url))
    async with database.engine.begin() as connection:
        await connection.run_sync(Model.metadata.create_all)
    yield database
    async with database.engine.begin() as connection:
        await connection.run_sync(Model.metadata.drop_all)
    await database.dispose()


async def count(database: Database, model: type[Model]) -> int:
    async with database.session() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_a_session_commits_when_the_block_succeeds(database: Database) -> None:
    async with database.session() as session:
        session.add(Author(name="Ada"))

    assert await count(database, Author) == 1


async def add_then_fail(database: Database) -> None:
    async with database.session() as session:
        session.add(Author(name="Ada"))
        await session.flush()
        raise RuntimeError("changed my mind")


async def test_a_session_rolls_back_when_the_block_fails(database: Database) -> None:
    with pytest.raises(RuntimeError, match="changed my mind"):
        await add_then_fail(database)

    assert await count(database, Author) == 0


async def test_foreign_keys_are_enforced(database: Database) -> None:
    with pytest.raises(IntegrityError):
        async with database.session() as session:
            session.add(Note(author_id=999, title="orphan"))

    assert await count(database, Note) == 0


def app_with_notes(database_url: str) -> FastAPI:
    app = create_app(load_settings(database_url=database_url))

    @app.post("/authors/{name}", status_code=201)
    async def add_author(name: str, session: DbSession) -> dict[str, str]:
        session.add(Author(name=name))
        return {"name": name}

    @app.post("/authors/{name}/refused")
    async def add_then_refuse(name: str, session: DbSession) -> None:
        session.add(Author(name=name))
        await session.flush()
        raise HTTPException(409, "refused after writing")

    return app


async def test_get_session_commits_a_successful_request(
    database: Database, database_url: str
) -> None:
    async with app_client(app_with_notes(database_url)) as client:
        response = await client.post("/authors/Grace")

    assert response.status_code == 201
    assert await count(database, Author) == 1


async def test_get_session_rolls_back_a_request_that_fails(
    database: Database, database_url: str
) -> None:
    async with app_client(app_with_notes(database_url)) as client:
        response = await client.post("/authors/Grace/refused")

    assert response.status_code == 409
    assert await count(database, Author) == 0


async def test_a_commit_that_fails_is_an_error_response_not_a_lost_write(
    database: Database, database_url: str
) -> None:
    async with app_client(app_with_notes(database_url)) as client:
        first = await client.post("/authors/Linus")
        duplicate = await client.post("/authors/Linus")

    assert first.status_code == 201
    assert duplicate.status_code == 500
    assert duplicate.headers["content-type"] == "application/problem+json"
    assert await count(database, Author) == 1


def test_constraint_names_follow_the_naming_convention() -> None:
    ddl = str(CreateTable(Note.__table__).compile())

    assert "CONSTRAINT pk_notes PRIMARY KEY" in ddl
    assert "CONSTRAINT uq_notes_author_id_title UNIQUE" in ddl
    assert "CONSTRAINT fk_notes_author_id_authors FOREIGN KEY" in ddl
    assert {index.name for index in Note.__table__.indexes} == {"ix_notes_title"}


def test_sqlite_in_memory_shares_one_database_across_sessions() -> None:
    database = Database.from_settings(load_settings(database_url="sqlite+aiosqlite://"))
    assert database.engine.pool.__class__.__name__ == "StaticPool"


async def test_sqlite_file_directories_are_created(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/nested/dir/app.db"
    database = Database.from_settings(load_settings(database_url=url))

    await database.ping()
    await database.dispose()

    assert (tmp_path / "nested" / "dir" / "app.db").exists()


@pytest.mark.parametrize("sslmode", ["disable", "prefer"])
async def test_a_url_with_sslmode_connects_to_postgres(postgres_url: str, sslmode: str) -> None:
    plain = postgres_url.replace("postgresql+asyncpg://", "postgres://", 1)
    database = Database.from_settings(load_settings(database_url=f"{plain}?sslmode={sslmode}"))

    await database.ping()
    await database.dispose()


async def test_null_pool_opens_a_connection_per_session_and_closes_it(postgres_url: str) -> None:
    application = f"nullpool-{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        database_url=f"{postgres_url}?application_name={application}", db_use_null_pool=True
    )
    database = Database.from_settings(settings)
    observer = Database.from_settings(load_settings(database_url=postgres_url))

    async def open_connections() -> int:
        async with observer.session() as session:
            query = text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")
            return int(await session.scalar(query, {"name": application}) or 0)

    assert isinstance(database.engine.pool, NullPool)
    async with database.session() as session:
        await session.execute(text("SELECT 1"))
        assert await open_connections() == 1
    assert await open_connections() == 0
    await database.dispose()
    await observer.dispose()


async def test_null_pool_prepares_every_statement_under_a_fresh_name(postgres_url: str) -> None:
    settings = load_settings(database_url=postgres_url, db_use_null_pool=True)
    database = Database.from_settings(settings)

    async def names(session: AsyncSession) -> set[str]:
        rows = await session.execute(text("SELECT name FROM pg_prepared_statements"))
        return {row[0] for row in rows}

    async with database.session() as session:
        first = await names(session)
        second = await names(session)
    await database.dispose()

    # The same SQL run twice was prepared twice, under two new names: nothing is cached on a
    # server connection that a transaction pooler may hand to another client.
    new_names = second - first
    assert new_names
    assert all(name.startswith("__asyncpg_") for name in new_names)


async def test_pooled_postgres_uses_the_configured_pool_size(postgres_url: str) -> None:
    database = Database.from_settings(load_settings(database_url=postgres_url, db_pool_size=7))

    assert database.engine.pool.size() == 7
    await database.dispose()


def test_a_postgres_url_without_the_postgres_extra_names_the_install_command(
    tmp_path: Path,
) -> None:
    # A fresh interpreter where importing asyncpg fails, as on an install without the extra.
    script = textwrap.dedent(
        """
        import sys
        sys.modules["asyncpg"] = None
        from omnistack_core import MissingDependencyError, load_settings
        from omnistack_core.db import Database
        try:
            Database.from_settings(load_settings(database_url="postgres://u:p@h/db"))
        except MissingDependencyError as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert "pip install 'omnistack-core[postgres]'" in result.stdout


async def test_a_read_session_runs_each_statement_outside_a_transaction(
    database: Database,
) -> None:
    async with database.read_session() as session:
        session.add(Author(name="ada"))
        await session.flush()
        # Nothing commits the session: its write stood on its own.
    assert await count(database, Author) == 1


async def backend_pid(database: Database) -> int:
    async with database.read_session() as session:
        return int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)


async def terminate(postgres_url: str, pid: int) -> None:
    killer = Database.from_settings(load_settings(database_url=postgres_url, db_pool_size=1))
    async with killer.read_session() as session:
        await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await killer.dispose()


async def test_a_pooled_connection_killed_while_idle_is_replaced_before_use(
    postgres_url: str,
) -> None:
    # Idle at least 0 seconds: every connection counts as idle and is tested when handed out.
    settings = load_settings(database_url=postgres_url, db_pool_size=1, db_pool_ping_idle_seconds=0)
    database = Database.from_settings(settings)
    first = await backend_pid(database)
    await terminate(postgres_url, first)

    second = await backend_pid(database)
    await database.dispose()

    assert second != first


async def test_a_connection_killed_under_load_fails_one_request_then_the_pool_recovers(
    postgres_url: str,
) -> None:
    # Returned a moment ago, so not tested before use: the statement finds it dead.
    settings = load_settings(
        database_url=postgres_url, db_pool_size=2, db_pool_ping_idle_seconds=3600
    )
    database = Database.from_settings(settings)
    async with database.read_session() as one, database.read_session() as two:
        pids = {
            int(await one.scalar(text("SELECT pg_backend_pid()")) or 0),
            int(await two.scalar(text("SELECT pg_backend_pid()")) or 0),
        }
    for pid in pids:
        await terminate(postgres_url, pid)

    with pytest.raises(DBAPIError) as failed:
        await backend_pid(database)
    after = {await backend_pid(database), await backend_pid(database)}
    await database.dispose()

    assert failed.value.connection_invalidated
    # The failure invalidated the whole pool: the other dead connection was never handed out.
    assert not after & pids
