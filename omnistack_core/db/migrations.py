"""Alembic, wired to OmniStack settings: the locked upgrade every deploy runs, and its checks.

A service's ``migrations/env.py`` is one call, :func:`run_alembic`, so ``alembic upgrade head``,
``alembic current`` and ``alembic check`` work as the deployment guide writes them.
:func:`upgrade` (``omnistack db upgrade``) is what deploys run: it takes a Postgres advisory
lock first, so that several instances starting at once migrate once, and the others wait and
then find nothing to do. :func:`downgrade` takes the same lock; :func:`current` and
:func:`check` tell CI where the database stands. Needs the ``migrations`` extra (Alembic).
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from logging.config import fileConfig
from pathlib import Path
from typing import Any, Literal

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
    from alembic.util.exc import CommandError
except ImportError as exc:  # pragma: no cover - exercised in a run without the extra
    raise MissingDependencyError("db.migrations", "migrations") from exc

# pg_advisory_lock takes a bigint; this one is ours ("omnistack-migrate" folded to 63 bits).
MIGRATION_LOCK_KEY = 0x6F6D6E6973746163
# Where the migration linter lends run_alembic its output buffer (omnistack_core.db.lint).
SQL_CAPTURE_ATTRIBUTE = "omnistack.sql_capture"
DEFAULT_LOCK_TIMEOUT = 300.0
_LOCK_POLL_SECONDS = 0.5

Direction = Literal["upgrade", "downgrade"]


class MigrationError(OmniStackError):
    """A migration failed, or the migration lock could not be taken."""

    def __init__(self, message: str, *, revision: str | None = None) -> None:
        super().__init__(message)
        self.revision = revision


@dataclass(frozen=True, slots=True)
class MigrationResult:
    """What an upgrade or a downgrade did.

    Attributes:
        before: The revision the database was at (None: an empty database).
        after: The revision it is at now.
        applied: The revisions upgraded or downgraded, in the order they ran; empty when
            there was nothing to do.
        waited_seconds: Time spent waiting for another runner's lock.
        ahead: The database is at a revision this code does not have: a newer release
            migrated it, and this one (a rollback) left it alone.
    """

    before: str | None
    after: str | None
    applied: tuple[str, ...] = field(default_factory=tuple)
    waited_seconds: float = 0.0
    ahead: bool = False


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
    capture = context.config.attributes.get(SQL_CAPTURE_ATTRIBUTE)
    if capture is not None:
        # The linter reads PostgreSQL's SQL whatever DATABASE_URL says, and needs no settings.
        capture.target_metadata, capture.script = target_metadata, context.script
        context.configure(
            dialect_name="postgresql", output_buffer=capture, literal_binds=True, **options
        )
        with context.begin_transaction():
            context.run_migrations()
        return
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
    revision: str = "heads",
    settings: Settings | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> MigrationResult:
    """Upgrade the database to head, holding the migration lock while doing it.

    Args:
        config_path: The service's ``alembic.ini``.
        revision: Where to stop; every head by default.
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
    return asyncio.run(_locked(config, settings, lock_timeout, revision, "upgrade"))


def downgrade(
    revision: str,
    config_path: str | Path = "alembic.ini",
    *,
    settings: Settings | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> MigrationResult:
    """Downgrade the database to ``revision``, holding the migration lock like :func:`upgrade`.

    Args:
        revision: A revision id, ``-1`` (one step back) or ``base`` (everything undone).
        config_path: The service's ``alembic.ini``.
        settings: The settings; loaded from the environment when None.
        lock_timeout: Seconds to wait for another runner's lock before giving up.

    Returns:
        What was done.

    Raises:
        MigrationError: The lock was not free in time, ``revision`` is unknown, or a
            revision's downgrade failed (``revision`` names it: the database stays there,
            with every downgrade before it done and recorded).
    """
    settings = settings or load_settings()
    config = Config(str(config_path))
    return asyncio.run(_locked(config, settings, lock_timeout, revision, "downgrade"))


@dataclass(frozen=True, slots=True)
class RevisionState:
    """Where the database stands against the revisions on disk.

    Attributes:
        current: The revisions the database is at (empty: nothing applied yet).
        heads: The newest revisions on disk; more than one means unmerged branches.
        pending: The revisions an upgrade would apply, oldest first.
        drift: Differences between the models and the database, as Alembic's autogenerate
            describes them; only compared when nothing is pending.
        unknown: Revisions the database is at that these migrations do not have (a newer
            release applied them); nothing is pending or compared then.
    """

    current: tuple[str, ...]
    heads: tuple[str, ...]
    pending: tuple[str, ...]
    drift: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """One head, nothing pending, no drift, nothing unknown: what ``db check`` requires."""
        return len(self.heads) == 1 and not (self.pending or self.drift or self.unknown)


def current(
    config_path: str | Path = "alembic.ini", *, settings: Settings | None = None
) -> RevisionState:
    """Where the database is: its revision, the heads, and what an upgrade would apply."""
    settings = settings or load_settings()
    config = Config(str(config_path))
    return asyncio.run(_state(config, settings, compare=False))


def check(
    config_path: str | Path = "alembic.ini", *, settings: Settings | None = None
) -> RevisionState:
    """:func:`current`, plus the drift between the models and an up-to-date database.

    Drift is what ``alembic revision --autogenerate`` would write: a model change without a
    revision, or a revision that the models do not reflect.
    """
    settings = settings or load_settings()
    # Alembic prints "No new upgrade operations detected"; the result says it instead.
    config = Config(str(config_path), stdout=io.StringIO())
    return asyncio.run(_state(config, settings, compare=True))


async def _state(config: Config, settings: Settings, *, compare: bool) -> RevisionState:
    script = ScriptDirectory.from_config(config)
    engine = engine_from_settings(_unpooled(settings), settings.migration_database_url)
    try:
        async with engine.connect() as connection:
            heads = await connection.run_sync(_current_heads)
            unknown = _unknown(script, heads)
            pending = [] if unknown else _pending(script, heads)
            drift: tuple[str, ...] = ()
            if compare and not pending and not unknown:
                drift = await connection.run_sync(_drift, config)
    finally:
        await engine.dispose()
    return RevisionState(heads, tuple(script.get_heads()), tuple(pending), drift, unknown)


def _drift(connection: Connection, config: Config) -> tuple[str, ...]:
    from alembic.util.exc import AutogenerateDiffsDetected  # noqa: PLC0415

    config.attributes["connection"] = connection
    try:
        command.check(config)
    except AutogenerateDiffsDetected as exc:
        return tuple(str(diff) for diff in exc.diffs)
    finally:
        del config.attributes["connection"]
        connection.rollback()
    return ()


async def _locked(
    config: Config, settings: Settings, lock_timeout: float, target: str, direction: Direction
) -> MigrationResult:
    script = ScriptDirectory.from_config(config)
    engine = engine_from_settings(_unpooled(settings), settings.migration_database_url)
    try:
        async with engine.connect() as connection:
            postgres = connection.dialect.name == "postgresql"
            waited = await _take_lock(connection, lock_timeout) if postgres else 0.0
            try:
                before = await connection.run_sync(_current_heads)
                unknown = _unknown(script, before)
                if unknown and direction == "upgrade":
                    # A rollback deploy: a newer release migrated this database, and its
                    # migrations were written for the older code to keep working. Leave it.
                    return MigrationResult(_one(before), _one(before), (), waited, ahead=True)
                if unknown:
                    raise MigrationError(
                        f"the database is at {', '.join(unknown)}, which these migrations do "
                        "not have: downgrade with the release that applied it"
                    )
                try:
                    await connection.run_sync(_run_command, config, target, direction)
                except Exception as exc:
                    now = await connection.run_sync(_current_heads)
                    name = _failing(script, now, direction)
                    raise MigrationError(
                        f"migration {name} failed: {type(exc).__name__}: {exc}", revision=name
                    ) from exc
                after = await connection.run_sync(_current_heads)
            finally:
                if postgres:
                    await _release_lock(connection)
    finally:
        await engine.dispose()
    if direction == "upgrade":
        ran = [rev for rev in _pending(script, before) if rev not in _pending(script, after)]
    else:
        ran = [rev for rev in _pending(script, after) if rev not in _pending(script, before)]
        ran.reverse()
    return MigrationResult(_one(before), _one(after), tuple(ran), waited)


def _unknown(script: ScriptDirectory, heads: tuple[str, ...]) -> tuple[str, ...]:
    """The revisions in ``heads`` that the script directory does not have."""
    missing = []
    for head in heads:
        try:
            script.get_revision(head)
        except CommandError:
            missing.append(head)
    return tuple(missing)


def _failing(script: ScriptDirectory, now: tuple[str, ...], direction: Direction) -> str:
    # Each revision runs in its own transaction, so the failed one was rolled back: an
    # upgrade stopped before the next pending revision, a downgrade at the current one.
    if direction == "downgrade":
        return _one(now) or "base"
    return next(iter(_pending(script, now)), "head")


def _one(heads: tuple[str, ...]) -> str | None:
    return ", ".join(heads) or None


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


def _current_heads(connection: Connection) -> tuple[str, ...]:
    heads = MigrationContext.configure(connection).get_current_heads()
    connection.commit()  # reading alembic_version began a transaction; end it
    return tuple(heads)


def _pending(script: ScriptDirectory, current: tuple[str, ...]) -> list[str]:
    revisions = script.iterate_revisions("heads", current or None)
    return [revision.revision for revision in reversed(list(revisions))]


def _run_command(connection: Connection, config: Config, target: str, direction: Direction) -> None:
    config.attributes["connection"] = connection
    try:
        if direction == "upgrade":
            command.upgrade(config, target)
        else:
            command.downgrade(config, target)
    finally:
        del config.attributes["connection"]
