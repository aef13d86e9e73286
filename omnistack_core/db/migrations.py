"""Alembic, wired to OmniStack settings: the locked upgrade every deploy runs, and its checks.

A service's ``migrations/env.py`` is one call
(:func:`~omnistack_core.service_migrations.run_service_migrations`), which runs Alembic
through :func:`run_alembic` with the service's revisions and the branch of every module its
app installs, so ``alembic upgrade head``, ``alembic current`` and ``alembic check`` work as
the deployment guide writes them.
:func:`upgrade` (``omnistack db upgrade``) is what deploys run: it takes a Postgres advisory
lock first, so that several instances starting at once migrate once, and the others wait and
then find nothing to do. :func:`downgrade` takes the same lock; :func:`current` and
:func:`check` tell CI where the database stands. Needs the ``migrations`` extra (Alembic).

The lock is a session-level ``pg_try_advisory_lock``: it is taken, held through every
revision's transaction and released on one connection, which must be one server session. A
transaction pooler (PgBouncer, Supavisor in transaction mode) hands each transaction whatever
server connection is free, so the lock would be taken on one session and the migrations run,
and the unlock sent, on others. With ``DB_USE_NULL_POOL`` set (the sign of such a pooler) the
commands that migrate therefore refuse unless ``DATABASE_DIRECT_URL`` names the database
directly (:func:`direct_migration_url`).
"""

from __future__ import annotations

import asyncio
import io
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from logging.config import fileConfig
from pathlib import Path
from typing import Any, Literal, TextIO

from pydantic import SecretStr
from sqlalchemy import Connection, MetaData, make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnistack_core.db.engine import engine_from_settings
from omnistack_core.errors import MissingDependencyError, OmniStackError
from omnistack_core.migration_branch import OPTIONS_ATTRIBUTE, MigrationBranch
from omnistack_core.settings import Settings, load_settings

try:
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util import coerce_resource_to_filename
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


THROUGH_A_POOLER = (
    "DB_USE_NULL_POOL is true, so DATABASE_URL goes through a transaction pooler, where the "
    "migration lock cannot hold: set DATABASE_DIRECT_URL to the database's direct (unpooled) "
    "URL to migrate"
)


def direct_migration_url(settings: Settings) -> SecretStr:
    """The URL to migrate through, refusing a transaction pooler.

    Returns:
        ``DATABASE_DIRECT_URL``, else ``DATABASE_URL`` when no pooler is declared.

    Raises:
        MigrationError: ``DB_USE_NULL_POOL`` is true, ``DATABASE_DIRECT_URL`` is unset and
            ``DATABASE_URL`` is PostgreSQL (:data:`THROUGH_A_POOLER`).
    """
    url = settings.migration_database_url
    if (
        settings.db_use_null_pool
        and settings.database_direct_url is None
        and make_url(url.get_secret_value()).get_backend_name() == "postgresql"
    ):
        raise MigrationError(THROUGH_A_POOLER)
    return url


def migration_engine(settings: Settings) -> AsyncEngine:
    """An engine for one migration run on the direct URL: no pool, no prepared statements.

    Raises:
        MigrationError: The URL goes through a transaction pooler (:func:`direct_migration_url`).
    """
    url = direct_migration_url(settings)
    # One connection for one run, so a session-level lock is held by the session it was
    # taken on; null-pool settings also keep prepared statements off should a pooler slip in.
    return engine_from_settings(settings.model_copy(update={"db_use_null_pool": True}), url)


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


def run_alembic(
    target_metadata: MetaData | Sequence[MetaData],
    *,
    branches: Sequence[MigrationBranch] = (),
) -> None:
    """Run Alembic from a service's ``env.py``, online or offline, with OmniStack settings.

    The URL is ``DATABASE_DIRECT_URL`` (else ``DATABASE_URL``), normalised like the app's.
    Each revision runs in its own transaction, so a failure leaves every earlier revision
    applied and recorded, and the failing one rolled back: fix it and run again.

    Args:
        target_metadata: The app's metadata and the installed modules', for autogenerate
            and ``alembic check``.
        branches: The installed modules' branches (``Module.migrations()``): their options
            reach their revisions, and ``alembic.ini`` must list their folders.

    Raises:
        MigrationError: ``alembic.ini``'s ``version_locations`` lacks a branch's folder.
    """
    from alembic import context  # noqa: PLC0415 - only exists while Alembic runs env.py

    check_locations(context.script, branches)
    context.config.attributes.setdefault(
        OPTIONS_ATTRIBUTE, {branch.label: dict(branch.options) for branch in branches}
    )
    options: dict[str, Any] = {
        "target_metadata": target_metadata,
        "transaction_per_migration": True,
    }
    across = _guide_commands_across_branches(context)
    if across is not None:
        options["fn"] = across
    options["process_revision_directives"] = _onto_the_service_branch(context.script)
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
    if context.config.config_file_name is not None and context.config.file_config.has_section(
        "loggers"
    ):
        # Run from the alembic command: its [loggers] print the revisions applied.
        fileConfig(context.config.config_file_name, disable_existing_loggers=False)
    settings = load_settings()
    if context.is_offline_mode():
        url = settings.migration_database_url.get_secret_value()
        context.configure(url=url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    try:
        engine = migration_engine(settings)
    except MigrationError as exc:
        # The alembic command prints a CommandError as one line ("FAILED: ..."), no traceback.
        raise CommandError(str(exc)) from None
    asyncio.run(_migrate_with_engine(engine, options))


def branch_options(label: str) -> Mapping[str, Any]:
    """What the installed module gives the revisions of branch ``label`` (its table names).

    Called from a module's revision while Alembic runs it; empty when the module gave none.
    """
    from alembic import context  # noqa: PLC0415 - only exists while Alembic runs env.py

    options: Mapping[str, Mapping[str, Any]] = context.config.attributes.get(OPTIONS_ATTRIBUTE, {})
    return options.get(label, {})


def migration_config(
    config_path: str | Path,
    branches: Sequence[MigrationBranch] = (),
    *,
    stdout: TextIO | None = None,
) -> Config:
    """The service's Alembic configuration with the modules' branches in it.

    Their folders are added to ``version_locations`` (whatever ``alembic.ini`` lists, the
    commands run through this see exactly the installed modules' revisions) and their
    options are handed to their revisions.
    """
    config = Config(str(config_path), stdout=stdout or sys.stdout)
    listed = config.get_version_locations_list() or [
        f"{config.get_main_option('script_location')}/versions"
    ]
    locations = list(dict.fromkeys([*listed, *(branch.location for branch in branches)]))
    # One per line: a package resource (omnistack_core.auth:migrations) holds a colon.
    config.set_main_option("path_separator", "newline")
    escaped = [location.replace("%", "%%") for location in locations]
    config.set_main_option("version_locations", "\n".join(escaped))
    config.attributes[OPTIONS_ATTRIBUTE] = {b.label: dict(b.options) for b in branches}
    return config


def check_locations(script: ScriptDirectory, branches: Sequence[MigrationBranch]) -> None:
    """Refuse a script directory that would not load every branch's revisions.

    Raises:
        MigrationError: ``alembic.ini``'s ``version_locations`` lacks a branch's folder.
    """
    loaded = {
        Path(coerce_resource_to_filename(str(location))).resolve()
        for location in (script.version_locations or [str(Path(script.dir, "versions"))])
    }
    missing = [branch for branch in branches if branch.directory.resolve() not in loaded]
    if missing:
        labels = ", ".join(branch.label for branch in missing)
        names = " ".join(branch.location for branch in missing)
        raise MigrationError(
            f"alembic.ini's version_locations lacks the revisions of {labels}: add {names} "
            "(one location per line, with path_separator = newline)"
        )


def _onto_the_service_branch(script: ScriptDirectory) -> Callable[..., None]:
    """New revisions (``alembic revision``) go on the service's own branch by default.

    The modules' branches are heads too, and Alembic would ask which head a revision follows:
    the service's, since the modules' revisions come with omnistack-core.
    """

    def place(_context: Any, _revision: Any, directives: list[Any]) -> None:
        own = [head for head in script.get_heads() if not script.get_revision(head).branch_labels]
        for directive in directives:
            # None from the alembic command without --head, "head" from command.revision().
            if getattr(directive, "head", None) in (None, "head") and len(own) == 1:
                directive.head = own[0]

    return place


def _guide_commands_across_branches(context: Any) -> Callable[..., Any] | None:
    """The deployment guide's ``alembic upgrade head`` and ``downgrade -1``, across branches.

    A service has its own branch and one per module, so there are several heads, and
    Alembic finds ``head`` and ``-1`` ambiguous. In an OmniStack service ``upgrade head``
    means every branch's head (``heads``), and ``downgrade -1`` one step back on the
    service's own branch: the revision its last deploy brought.
    """
    arguments = context.config.cmd_opts
    command_run = getattr(arguments, "cmd", None)
    if not command_run or len(context.script.get_heads()) < 2:
        return None
    script: ScriptDirectory = context.script
    asked = getattr(arguments, "revision", None)
    if command_run[0] is command.upgrade and asked == "head":

        def upgrade_every_head(current: Any, _context: Any) -> Any:
            return script._upgrade_revs("heads", current)  # noqa: SLF001 - `upgrade heads`

        return upgrade_every_head
    if command_run[0] is command.downgrade and asked == "-1":

        def downgrade_the_service(current: Any, _context: Any) -> Any:
            target = service_step_back(script, tuple(current)) or "-1"
            return script._downgrade_revs(target, current)  # noqa: SLF001 - `downgrade <rev>`

        return downgrade_the_service
    return None


def service_step_back(script: ScriptDirectory, current: tuple[str, ...]) -> str | None:
    """Where ``-1`` goes on the service's own branch, or None without exactly one there."""
    own = [revision for revision in current if branch_of(script, revision) == SERVICE_BRANCH]
    if len(own) != 1:
        return None
    revision = script.get_revision(own[0])
    below = revision.down_revision
    if below is None:
        return f"{revision.revision}@base"
    return below if isinstance(below, str) else below[0]


def _migrate(connection: Connection, options: dict[str, Any]) -> None:
    from alembic import context  # noqa: PLC0415 - only exists while Alembic runs env.py

    # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
    batch = connection.dialect.name == "sqlite"
    context.configure(connection=connection, render_as_batch=batch, **options)
    with context.begin_transaction():
        context.run_migrations()


async def _migrate_with_engine(engine: AsyncEngine, options: dict[str, Any]) -> None:
    # The alembic command (`alembic upgrade head`, as the deployment guide writes it) holds
    # the same lock as `omnistack db upgrade`, so the two never migrate at once.
    try:
        async with locked_connection(engine, DEFAULT_LOCK_TIMEOUT) as (connection, _):
            await connection.run_sync(_migrate, options)
    finally:
        await engine.dispose()


def upgrade(
    config_path: str | Path = "alembic.ini",
    *,
    revision: str = "heads",
    settings: Settings | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    branches: Sequence[MigrationBranch] = (),
) -> MigrationResult:
    """Upgrade the database to every head, holding the migration lock while doing it.

    Args:
        config_path: The service's ``alembic.ini``.
        revision: Where to stop; every branch's head by default.
        settings: The settings; loaded from the environment when None.
        lock_timeout: Seconds to wait for another runner's lock before giving up.
        branches: The installed modules' branches, migrated with the service's own.

    Returns:
        What was done.

    Raises:
        MigrationError: The lock was not free in time, or a revision failed (``revision``
            names it; the revisions before it are applied and recorded).
    """
    settings = settings or load_settings()
    config = migration_config(config_path, branches)
    return asyncio.run(_locked(config, settings, lock_timeout, revision, "upgrade"))


def downgrade(
    revision: str,
    config_path: str | Path = "alembic.ini",
    *,
    settings: Settings | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    branches: Sequence[MigrationBranch] = (),
) -> MigrationResult:
    """Downgrade the database to ``revision``, holding the migration lock like :func:`upgrade`.

    Args:
        revision: A revision id, ``-1`` (one step back), ``base`` (everything undone), or
            one of a branch: ``omnistack_billing@-1``, ``omnistack_billing@base``.
        config_path: The service's ``alembic.ini``.
        settings: The settings; loaded from the environment when None.
        lock_timeout: Seconds to wait for another runner's lock before giving up.
        branches: The installed modules' branches.

    Returns:
        What was done.

    Raises:
        MigrationError: The lock was not free in time, ``revision`` is unknown, or a
            revision's downgrade failed (``revision`` names it: the database stays there,
            with every downgrade before it done and recorded).
    """
    settings = settings or load_settings()
    config = migration_config(config_path, branches)
    return asyncio.run(_locked(config, settings, lock_timeout, revision, "downgrade"))


SERVICE_BRANCH = "service"
"""How the service's own revisions (those of no module's branch) are named per branch."""


@dataclass(frozen=True, slots=True)
class RevisionState:
    """Where the database stands against the revisions on disk.

    Attributes:
        current: The revisions the database is at (empty: nothing applied yet).
        heads: The newest revisions on disk: one per branch (the service's, each module's);
            two in one branch mean revisions nobody merged.
        pending: The revisions an upgrade would apply, oldest first.
        drift: Differences between the models and the database, as Alembic's autogenerate
            describes them; only compared when nothing is pending.
        unknown: Revisions the database is at that these migrations do not have (a newer
            release applied them); nothing is pending or compared then.
        branches: The branch of each revision named above (``service``, ``omnistack_auth``).
        at: Where each branch is: its newest applied revision. Not always in ``current``:
            Alembic keeps no row for a revision that a later one depends on (``depends_on``).
    """

    current: tuple[str, ...]
    heads: tuple[str, ...]
    pending: tuple[str, ...]
    drift: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    branches: Mapping[str, str] = field(default_factory=dict)
    at: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def by_branch(self, revisions: Sequence[str]) -> dict[str, list[str]]:
        """``revisions`` grouped by branch, in the order given."""
        grouped: dict[str, list[str]] = {}
        for revision in revisions:
            grouped.setdefault(self.branches.get(revision, SERVICE_BRANCH), []).append(revision)
        return grouped

    @property
    def split_branches(self) -> dict[str, list[str]]:
        """The branches with more than one head: revisions that need a merge."""
        return {
            branch: heads for branch, heads in self.by_branch(self.heads).items() if len(heads) > 1
        }

    @property
    def ok(self) -> bool:
        """One head per branch, nothing pending, no drift, nothing unknown: ``db check``."""
        return not (self.split_branches or self.pending or self.drift or self.unknown)


def current(
    config_path: str | Path = "alembic.ini",
    *,
    settings: Settings | None = None,
    branches: Sequence[MigrationBranch] = (),
) -> RevisionState:
    """Where the database is: its revisions, the heads, and what an upgrade would apply."""
    settings = settings or load_settings()
    config = migration_config(config_path, branches)
    return asyncio.run(_state(config, settings, compare=False))


def check(
    config_path: str | Path = "alembic.ini",
    *,
    settings: Settings | None = None,
    branches: Sequence[MigrationBranch] = (),
) -> RevisionState:
    """:func:`current`, plus the drift between the models and an up-to-date database.

    Drift is what ``alembic revision --autogenerate`` would write: a model change without a
    revision, or a revision that the models do not reflect, in the service's tables or the
    modules'.
    """
    settings = settings or load_settings()
    # Alembic prints "No new upgrade operations detected"; the result says it instead.
    config = migration_config(config_path, branches, stdout=io.StringIO())
    return asyncio.run(_state(config, settings, compare=True))


async def _state(config: Config, settings: Settings, *, compare: bool) -> RevisionState:
    script = ScriptDirectory.from_config(config)
    # Reading where the database stands takes no lock, so a pooler is no danger here.
    engine = engine_from_settings(
        settings.model_copy(update={"db_use_null_pool": True}), settings.migration_database_url
    )
    try:
        async with engine.connect() as connection:
            heads = await connection.run_sync(current_heads)
            unknown = _unknown(script, heads)
            pending = [] if unknown else _pending(script, heads)
            drift: tuple[str, ...] = ()
            if compare and not pending and not unknown:
                drift = await connection.run_sync(_drift, config)
    finally:
        await engine.dispose()
    on_disk = tuple(script.get_heads())
    named = {*heads, *on_disk, *pending} - set(unknown)
    return RevisionState(
        heads,
        on_disk,
        tuple(pending),
        drift,
        unknown,
        {revision: branch_of(script, revision) for revision in named},
        {} if unknown else _positions(script, heads),
    )


def _parents(down_revision: str | Sequence[str] | None) -> tuple[str, ...]:
    if down_revision is None:
        return ()
    return (down_revision,) if isinstance(down_revision, str) else tuple(down_revision)


def _positions(script: ScriptDirectory, current: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Each branch's newest applied revisions, dependencies of later revisions included."""
    applied = {
        revision.revision: revision for revision in script.iterate_revisions(current, "base")
    }
    below = {
        parent
        for revision in applied.values()
        for parent in _parents(revision.down_revision)
        if branch_of(script, parent) == branch_of(script, revision.revision)
    }
    positions: dict[str, list[str]] = {}
    for name in reversed(list(applied)):
        if name not in below:
            positions.setdefault(branch_of(script, name), []).append(name)
    return {branch: tuple(names) for branch, names in positions.items()}


def branch_of(script: ScriptDirectory, revision: str) -> str:
    """The branch label of ``revision``, or ``service`` for the service's own revisions."""
    labels = sorted(script.get_revision(revision).branch_labels)
    return labels[0] if labels else SERVICE_BRANCH


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
    engine = migration_engine(settings)
    try:
        async with locked_connection(engine, lock_timeout) as (connection, waited):
            before = await connection.run_sync(current_heads)
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
            if direction == "downgrade" and target == "-1" and len(script.get_heads()) > 1:
                target = service_step_back(script, before) or target
            try:
                await connection.run_sync(_run_command, config, target, direction)
            except Exception as exc:
                now = await connection.run_sync(current_heads)
                name = _failing(script, now, direction, target)
                raise MigrationError(
                    f"migration {name} failed: {type(exc).__name__}: {exc}", revision=name
                ) from exc
            after = await connection.run_sync(current_heads)
    finally:
        await engine.dispose()
    if direction == "upgrade":
        ran = [rev for rev in _pending(script, before) if rev not in _pending(script, after)]
    else:
        ran = [rev for rev in _pending(script, after) if rev not in _pending(script, before)]
        ran.reverse()
    return MigrationResult(_one(before), _one(after), tuple(ran), waited)


@asynccontextmanager
async def locked_connection(
    engine: AsyncEngine, lock_timeout: float
) -> AsyncIterator[tuple[AsyncConnection, float]]:
    """A connection holding the migration lock (on PostgreSQL), and the seconds waited for it.

    Raises:
        MigrationError: Another runner held the lock for longer than ``lock_timeout``.
    """
    async with engine.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        waited = await _take_lock(connection, lock_timeout) if postgres else 0.0
        try:
            yield connection, waited
        finally:
            if postgres:
                await _release_lock(connection)


def _unknown(script: ScriptDirectory, heads: tuple[str, ...]) -> tuple[str, ...]:
    """The revisions in ``heads`` that the script directory does not have."""
    missing = []
    for head in heads:
        try:
            script.get_revision(head)
        except CommandError:
            missing.append(head)
    return tuple(missing)


def _failing(
    script: ScriptDirectory, now: tuple[str, ...], direction: Direction, target: str
) -> str:
    # Each revision runs in its own transaction, so the failed one was rolled back: an
    # upgrade stopped before the next pending revision, a downgrade at the current one of
    # the branch it was taking back.
    if direction == "downgrade":
        branch = _branch_of_target(script, target)
        mine = tuple(r for r in now if branch is None or branch_of(script, r) == branch)
        return _one(mine or now) or "base"
    return next(iter(_pending(script, now)), "head")


def _branch_of_target(script: ScriptDirectory, target: str) -> str | None:
    """The branch a downgrade target names (``omnistack_billing@-1``, a revision), if one."""
    name = target.partition("@")[0] if "@" in target else target
    labels = {label for revision in script.walk_revisions() for label in revision.branch_labels}
    if name in labels:
        return name
    try:
        revision = script.get_revision(name)
    except (CommandError, ValueError):  # "-1" and other relative steps name no branch
        return None
    return None if revision is None else branch_of(script, revision.revision)


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


def current_heads(connection: Connection) -> tuple[str, ...]:
    """The revisions the database is at (one per branch), ending the read's transaction."""
    heads = MigrationContext.configure(connection).get_current_heads()
    connection.commit()  # reading alembic_version began a transaction; end it
    return tuple(heads)


def _pending(script: ScriptDirectory, current: tuple[str, ...]) -> list[str]:
    """The revisions an upgrade to every head would apply, oldest first.

    Every branch counts: the database sits at one revision per branch, and a branch it has
    never seen (a module added since) is pending from its base.
    """
    applied = {revision.revision for revision in script.iterate_revisions(current, "base")}
    everything = reversed(list(script.walk_revisions()))
    return [revision.revision for revision in everything if revision.revision not in applied]


def _run_command(connection: Connection, config: Config, target: str, direction: Direction) -> None:
    config.attributes["connection"] = connection
    try:
        if direction == "upgrade":
            command.upgrade(config, target)
        else:
            command.downgrade(config, target)
    finally:
        del config.attributes["connection"]
