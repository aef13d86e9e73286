"""Real PostgreSQL and Redis for tests: a throw-away database per run, a flushed Redis database."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from omnistack_core.database_url import normalize_database_url

DEFAULT_TEST_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"

_CONNECT_TIMEOUT = 5.0
T = TypeVar("T")


class ServiceUnavailableError(RuntimeError):
    """The server a test needs does not answer, or its client library is not installed."""


def create_test_database(server_url: str = DEFAULT_TEST_POSTGRES_URL) -> str:
    """Create a uniquely named, empty database; drop it with :func:`drop_test_database`.

    Args:
        server_url: Any database on the server, used to create the new one; the role must be
            allowed to create databases.

    Returns:
        The ``postgresql+asyncpg://`` URL of the new database.

    Raises:
        ServiceUnavailableError: asyncpg is missing or the server does not answer.
    """
    name = f"omnistack_test_{secrets.token_hex(6)}"
    _run(_execute(server_url, f'CREATE DATABASE "{name}"'))
    base, _, query = normalize_database_url(server_url).partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


def drop_test_database(server_url: str, database_url: str) -> None:
    """Drop the database :func:`create_test_database` made, ending sessions still open on it.

    Args:
        server_url: The URL given to :func:`create_test_database`.
        database_url: The URL it returned.
    """
    name = database_url.partition("?")[0].rsplit("/", 1)[1]
    _run(_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def flush_redis(url: str = DEFAULT_TEST_REDIS_URL) -> None:
    """Empty the Redis database of ``url``.

    Raises:
        ServiceUnavailableError: redis-py is missing or the server does not answer.
    """
    try:
        import redis  # noqa: PLC0415 - only the tests that use Redis need the client
    except ImportError as exc:
        raise ServiceUnavailableError("redis-py is not installed: pip install redis") from exc
    client = redis.Redis.from_url(url, socket_connect_timeout=_CONNECT_TIMEOUT)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        raise ServiceUnavailableError(f"Redis at {_where(url)} does not answer: {exc}") from exc
    finally:
        client.close()


async def _execute(server_url: str, statement: str) -> None:
    try:
        import asyncpg  # noqa: PLC0415 - only the tests that use Postgres need the driver
    except ImportError as exc:
        raise ServiceUnavailableError(
            "asyncpg is not installed: pip install 'omnistack-core[postgres]'"
        ) from exc
    dsn = server_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    try:
        connection = await asyncpg.connect(dsn, timeout=_CONNECT_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise ServiceUnavailableError(
            f"PostgreSQL at {_where(server_url)} does not answer: {exc}"
        ) from exc
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _where(url: str) -> str:
    return url.rpartition("@")[2].split("?")[0]


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    # A thread of its own: the caller may already be inside a running event loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
