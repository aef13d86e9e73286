"""The async engine, configured from settings for Postgres (pooled or not) or SQLite."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, StaticPool

from omnistack_core.database_url import connect_arguments
from omnistack_core.errors import MissingDependencyError
from omnistack_core.settings import Settings


def engine_from_settings(settings: Settings, url: SecretStr | None = None) -> AsyncEngine:
    """Create the async engine for ``settings``.

    Postgres gets a connection pool of ``DB_POOL_SIZE``, or, with ``DB_USE_NULL_POOL``, a
    connection per session with asyncpg's and SQLAlchemy's prepared-statement caches off and a
    unique name per statement, which transaction-mode poolers (PgBouncer, Supavisor) require.
    SQLite gets foreign keys enforced and, for a file, write-ahead logging.

    Args:
        settings: The loaded settings.
        url: Another URL than ``DATABASE_URL``, e.g. ``settings.migration_database_url``.

    Returns:
        The engine; dispose of it at shutdown.

    Raises:
        MissingDependencyError: A Postgres URL without the ``postgres`` extra installed.
    """
    sa_url = make_url((url or settings.database_url).get_secret_value())
    if sa_url.get_backend_name() == "sqlite":
        return _sqlite_engine(sa_url)
    if importlib.util.find_spec("asyncpg") is None:
        raise MissingDependencyError("db", "postgres")
    query, connect_args = connect_arguments(sa_url.query)
    options: dict[str, Any]
    if settings.db_use_null_pool:
        options = {"poolclass": NullPool}
        connect_args |= {
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": _unique_statement_name,
        }
    else:
        options = {
            "pool_size": settings.db_pool_size,
            "max_overflow": settings.db_max_overflow,
            "pool_timeout": settings.db_pool_timeout,
            "pool_recycle": settings.db_pool_recycle,
        }
    engine = create_async_engine(sa_url.set(query=query), connect_args=connect_args, **options)
    if not settings.db_use_null_pool:
        _ping_connections_idle_longer_than(engine, settings.db_pool_ping_idle_seconds)
    return engine


def _ping_connections_idle_longer_than(engine: AsyncEngine, seconds: float) -> None:
    """Test a connection before handing it out only when it has sat idle ``seconds``.

    SQLAlchemy's ``pool_pre_ping`` tests every checkout, and asyncpg's test is three round
    trips (BEGIN, a statement, ROLLBACK): more than a one-row read costs. Platforms drop
    connections that sat idle for minutes, and those are the ones this tests; a connection a
    request returned a moment ago is handed out as is. One that died while busy (the server
    restarted under load) fails that one request, and the error invalidates the pool, so the
    requests after it get fresh connections.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _handed_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get(_RETURNED_AT)
        if returned_at is None or time.monotonic() - returned_at < seconds:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            # The pool discards this connection and hands out another (a new one if need be).
            raise DisconnectionError(str(exc)) from exc


_RETURNED_AT = "omnistack_returned_at"


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid4().hex}__"


def _sqlite_engine(url: URL) -> AsyncEngine:
    in_memory = url.database in (None, "", ":memory:")
    if in_memory:
        # Each aiosqlite connection would otherwise be a separate, empty database.
        engine = create_async_engine(url, poolclass=StaticPool)
    else:
        Path(str(url.database)).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    return engine
