"""PostgreSQL beside the targets: fresh databases, seeded rows, and sessions counted."""

from __future__ import annotations

import psycopg

from omnistack_core.testing import create_test_database, drop_test_database
from omnistack_core.testing.services import DEFAULT_TEST_POSTGRES_URL

SERVER_URL = DEFAULT_TEST_POSTGRES_URL
"""Any database of the server; new databases are made and dropped through it."""

__all__ = ["create_database", "drop_database", "insert_items", "sessions", "with_driver"]


def create_database() -> str:
    """A fresh, empty database: its ``postgresql+asyncpg://`` URL."""
    return create_test_database(SERVER_URL)


def drop_database(url: str) -> None:
    drop_test_database(SERVER_URL, url)


def name_of(url: str) -> str:
    return url.partition("?")[0].rsplit("/", 1)[1]


def with_driver(url: str, driver: str) -> str:
    """``url`` with SQLAlchemy's ``driver`` (``psycopg``), or none when ``driver`` is empty."""
    rest = url.split("://", 1)[1].partition("?")[0]
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    return f"{scheme}://{rest}"


def sessions(database: str) -> int:
    """Sessions ever opened on ``database``, from ``pg_stat_database`` (PostgreSQL 14+).

    A backend reports its own connection with its statistics, at most once a second while
    busy; so sessions opened in a round's last second may be counted in the next round.
    """
    with psycopg.connect(with_driver(SERVER_URL, ""), autocommit=True) as connection:
        row = connection.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
    return int(row[0]) if row else 0


def insert_items(url: str, owner: str, count: int) -> list[int]:
    """``count`` items of ``owner`` written straight into a generated service's table.

    Not through the API: the service allows 60 writes a minute per user, and the list route
    needs one user with 100 rows.
    """
    with psycopg.connect(with_driver(url, ""), autocommit=True) as connection:
        rows = connection.execute(
            "INSERT INTO items (owner_id, name) SELECT %s, 'seeded item ' || n "
            "FROM generate_series(1, %s) AS n RETURNING id",
            (owner, count),
        ).fetchall()
    return sorted(int(row[0]) for row in rows)
