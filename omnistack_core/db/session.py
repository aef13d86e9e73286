"""Sessions: one transaction per unit of work, committed on success, rolled back on error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from omnistack_core.db.engine import engine_from_settings
from omnistack_core.settings import Settings


class Database:
    """An async engine and the session factory bound to it.

    ``create_app`` keeps one on ``app.state.database`` for the app's lifetime.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # Objects stay readable after commit: a response is often built from them afterwards.
        self.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        self.autocommit_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        """The same pool, each statement its own transaction: no BEGIN and COMMIT around a
        statement that stands alone, which on Postgres are a round trip each."""
        self.read_sessionmaker = async_sessionmaker(self.autocommit_engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings, url: SecretStr | None = None) -> Database:
        """Create the engine for ``settings`` (or for ``url``) and wrap it."""
        return cls(engine_from_settings(settings, url))

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits when the block succeeds and rolls back if not."""
        async with self.sessionmaker() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            await session.commit()

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads, where each statement runs in a transaction of its own.

        A single statement sees a consistent snapshot, so a route that reads with one query
        loses nothing and saves the round trips of BEGIN and COMMIT. Several statements may
        each see a different moment; read with :meth:`session` when they must agree. Writes
        in it commit statement by statement, which is why writing routes use :meth:`session`.
        """
        async with self.read_sessionmaker() as session:
            yield session

    async def ping(self) -> None:
        """Run ``SELECT 1``; raises when the database cannot answer."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: a session for the request, committed when the endpoint returns.

    Use it through :data:`DbSession`, which ends the transaction before the response is sent,
    so a failing commit turns into an error response instead of a lost write.
    """
    database: Database = request.app.state.database
    async with database.session() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
"""Annotated dependency: ``async def handler(session: DbSession)``."""


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: a session for a route that only reads (:meth:`Database.read_session`).

    Use it through :data:`DbReadSession`.
    """
    database: Database = request.app.state.database
    async with database.read_session() as session:
        yield session


DbReadSession = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
"""Annotated dependency for reading routes: ``async def handler(session: DbReadSession)``.

Each statement is its own transaction: a one-query read costs one round trip instead of three.
"""
