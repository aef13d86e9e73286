"""Alembic, wired to OmniStack settings, and the locked upgrade every deploy runs.

A service's ``migrations/env.py`` is one call, :func:`run_alembic`, so ``alembic upgrade head``,
``alembic current`` and ``alembic check`` work as the deployment guide writes them.
:func:`upgrade` (``omnistack db upgrade``) is what deploys run: it takes a Postgres advisory
lock first, so that several instances starting at once migrate once, and the others wait and
then find nothing to do. Needs the ``migrations`` extra (Alembic).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from logging.config import fileConfig
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, MetaData, text
from sqlalchemy.ext.asyncio import AsyncConnection

from omnistack_core.db.engine import engine_from_settings
from omnistack_core.errors import MissingDependencyError, OmniStackError
from omnistack_core.settings import Settings, load_settings

try:
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
except ImportError as exc:  # pragma: no cover - exercised in a run without the extra
    raise MissingDependencyError("db.migrations", "migrations") from exc

# pg_advisory_lock takes a bigint; this one is ours ("omnistack-migrate" folded to 63 bits).
MIGRATION_LOCK_KEY = 0x6F6D6E6973746163
DEFAULT_LOCK_TIMEOUT = 300.0
_LOCK_POLL_SECONDS = 0.5


class MigrationError(OmniStackError):
    """A migration failed, or the migration lock could not be taken."""

    def __init__(self, message: str, *, revision: str | None = None) -> None:
        super().__init__(message)
        self.revision = revision


@dataclass(frozen=True, slots=True)
class UpgradeResult:
    """What an upgrade did.

    Attributes:
        before: The revision the database was at (None: an empty database).
        after: The revision it is at now.
        applied: The revisions applied, oldest first; empty when there was nothing to do.
        waited_seconds: Time spent waiting for another runner's lock.
    """

    before: str | None
    after: str | None
    applied: tuple[str, ...] = field(default_factory=tuple)
    waited_seconds: float = 0.0


def run_alembic(target_metadata: MetaData | Sequence[MetaData]) -> None:
    """Run Alembic from a service's ``env.py``, online or offline, with OmniStack settings.

    The URL is ``DATABASE_DIRECT_URL`` (else ``DATABASE_URL``), normalised like the app's.
    Each revision runs in its own transaction, so a failure leaves every earlier revision
    applied and recorded, and the failing one rolled back: fix it and run again.

    Args:
        target_metadata: The app's metadata and the installed modules', for autogenerate
            and ``alembic check``.
    """
    from alembic import context  # noqa: PLC0415 - only exists while Alembic runs env.py

    options: dict[str, Any] = {
        "target_metadata": target_metadata,
        "transaction_per_migration": True,
    }
    given: Connection | None = context.config.attributes.get("connection")
    if given is not None:
        # upgrade() holds the lock and lends its connection.
        _migrate(given, options)
        return
    if context.config.config_file_name is not None:
        # Run from the alembic command: its [loggers] print the revisions applied.
        fileConfig(context.config.config_file_name, disable_existing_loggers=False)
    settings = load_settings()
    url = settings.migration_database_url.get_secret_value()
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_migrate_with_engine(settings, options))


def _migrate(connection: Connection, options: dict[str, Any]) -> None:
    from alembic import context  # noqa: PLC0415 - only exists while Alembic runs env.py

    # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
    batch = connection.dialect.name == "sqlite"
    context.configure(connection=connection, render_as_batch=batch, **options)
    with context.begin_transaction():
        context.run_migrations()


async def _migrate_with_engine(settings: Settings, options: dict[str, Any]) -> None:
    engine = engine_from_settings(_unpooled(settings), settings.migration_database_url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate, options)
    finally:
        await engine.dispose()


def _unpooled(settings: Settings) -> Settings:
    # A migration is one connection for one run: no pool, and through a pooler it must not
    # rely on prepared statements.
    return settings.model_copy(update={"db_use_null_pool": True})


def upgrade(
    config_path: str | Path = "alembic.ini",
    *,
    settings: Settings | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> UpgradeResult:
    """Upgrade the database to head, holding the migration lock while doing it.

    Args:
        config_path: The service's ``alembic.ini``.
        settings: The settings; loaded from the environment when None.
        lock_timeout: Seconds to wait for another runner's lock before giving up.

    Returns:
        What was done.

    Raises:
        MigrationError: The lock was not free in time, or a revision failed (``revision``
            names it; the revisions before it are applied and recorded).
    """
    settings = settings or load_settings()
    config = Config(str(config_path))
    return asyncio.run(_locked_upgrade(config, settings, lock_timeout))


async def _locked_upgrade(config: Config, settings: Settings, lock_timeout: float) -> UpgradeResult:
    script = ScriptDirectory.from_config(config)
    engine = engine_from_settings(_unpooled(settings), settings.migration_database_url)
    try:
        async with engine.connect() as connection:
            postgres = connection.dialect.name == "postgresql"
            waited = await _take_lock(connection, lock_timeout) if postgres else 0.0
            try:
                before = await connection.run_sync(_current_revision)
                pending = _pending(script, before)
                try:
                    await connection.run_sync(_upgrade_to_head, config)
                except Exception as exc:
                    now = await connection.run_sync(_current_revision)
                    failing = _pending(script, now)[:1]
                    name = failing[0] if failing else "head"
                    raise MigrationError(
                        f"migration {name} failed: {type(exc).__name__}: {exc}", revision=name
                    ) from exc
                after = await connection.run_sync(_current_revision)
            finally:
                if postgres:
                    await _release_lock(connection)
    finally:
        await engine.dispose()
    return UpgradeResult(before, after, tuple(pending), waited)


async def _take_lock(connection: AsyncConnection, wait_seconds: float) -> float:
    started = time.monotonic()
    while True:
        taken = await connection.scalar(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
        )
        # Session-level lock: commit, so that each migration gets its own transaction.
        await connection.commit()
        if taken:
            return time.monotonic() - started
        if time.monotonic() - started >= wait_seconds:
            raise MigrationError(
                f"another runner held the migration lock for more than {wait_seconds:g} s"
            )
        await asyncio.sleep(_LOCK_POLL_SECONDS)


async def _release_lock(connection: AsyncConnection) -> None:
    await connection.rollback()  # a failed migration leaves its transaction to end first
    await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
    await connection.commit()


def _current_revision(connection: Connection) -> str | None:
    revision = MigrationContext.configure(connection).get_current_revision()
    connection.commit()  # reading alembic_version began a transaction; end it
    return revision


def _pending(script: ScriptDirectory, current: str | None) -> list[str]:
    revisions = script.iterate_revisions("heads", current)
    return [revision.revision for revision in reversed(list(revisions))]


def _upgrade_to_head(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    try:
        command.upgrade(config, "heads")
    finally:
        del config.attributes["connection"]
