"""``omnistack db``: migrations under a lock, their state, and the linter."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from omnistack_core.cli.service_app import add_app_option, configured_app
from omnistack_core.db.connection_errors import connection_problem
from omnistack_core.errors import ConfigurationError, MissingDependencyError
from omnistack_core.redaction import redact_url
from omnistack_core.service_migrations import branches_of, modules_of_app
from omnistack_core.settings import Settings, load_settings
from omnistack_core.startup_errors import OutputFormat, report

if TYPE_CHECKING:
    from omnistack_core.migration_branch import MigrationBranch
    from omnistack_core.module import Module


def add_commands(commands: Any) -> None:
    """Add ``db upgrade|downgrade|current|check|lint``."""
    database = commands.add_parser("db", help="database migrations")
    db_commands = database.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    upgrade = db_commands.add_parser(
        "upgrade",
        help="migrate the database to every head, under a lock (what deploys run)",
        description="Apply the service's revisions and those of every module the app installs "
        "while holding a Postgres advisory lock, so instances starting together migrate once. "
        "Uses DATABASE_DIRECT_URL when set, and refuses to run without it when "
        "DB_USE_NULL_POOL says DATABASE_URL goes through a transaction pooler.",
    )
    upgrade.set_defaults(handler=_db_upgrade)
    downgrade = db_commands.add_parser(
        "downgrade",
        help="migrate the database back to a revision, under the same lock",
        description="Downgrade to REV (a revision id, -1 for one step back, base for an "
        "empty schema; a module's branch with BRANCH@-1 or BRANCH@base, e.g. "
        "omnistack_billing@base) while holding the migration lock. Uses DATABASE_DIRECT_URL "
        "when set (required with DB_USE_NULL_POOL).",
    )
    downgrade.add_argument("revision", metavar="REV", help="the revision to go back to")
    downgrade.set_defaults(handler=_db_downgrade)
    current = db_commands.add_parser(
        "current", help="show the database's revision and what an upgrade would apply"
    )
    current.set_defaults(handler=_db_current)
    db_check = db_commands.add_parser(
        "check",
        help="exit 1 on pending revisions, a branch with several heads, or models that differ",
        description="Fail when a branch (the service's, or a module's) has several heads, when "
        "any revision is pending, or when the models and the migrations disagree (a model "
        "change without a revision), in the service's tables or the modules'.",
    )
    db_check.set_defaults(handler=_db_check)
    lint = db_commands.add_parser(
        "lint",
        help="flag migrations that lock tables or break the running code (exit 1)",
        description="Read the SQL Alembic would run for the pending revisions (those after "
        "--since, or those the database has not applied) and flag unsafe statements. A "
        "comment '# omnistack-lint: allow RULE -- reason' in a revision allows RULE there.",
    )
    lint.add_argument(
        "--since",
        metavar="REV",
        help="lint the revisions after REV ('base' for all) without asking the database",
    )
    lint.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    lint.add_argument(
        "--large-table-rows",
        type=float,
        default=100_000,
        help="tables the database sizes below this are small enough to rewrite (100000)",
    )
    lint.add_argument("--rules", action="store_true", help="list the rules and exit")
    lint.set_defaults(handler=_db_lint)
    adopt = db_commands.add_parser(
        "adopt",
        help="record the modules' first revisions as applied where their tables exist",
        description="For a database made before the modules shipped their migrations: check "
        "that each module's tables are what its branch's first revision makes, and record "
        "that revision as applied (no row is touched). Refuses, listing the differences, "
        "where they are not. Run it once, before `omnistack db upgrade`.",
    )
    adopt.set_defaults(handler=_db_adopt)
    for command in (upgrade, downgrade, current, db_check, lint, adopt):
        command.add_argument("--config", default="alembic.ini", help="Alembic config (alembic.ini)")
        add_app_option(command)
    for command in (upgrade, downgrade, adopt):
        command.add_argument(
            "--lock-timeout", type=float, default=300.0, help="seconds to wait for the lock (300)"
        )


def upgrade_for_development(config: str, app: str) -> int:
    """Migrate before ``omnistack dev`` serves; the exit status of ``db upgrade``."""
    return _db_upgrade(argparse.Namespace(config=config, lock_timeout=30.0, app=app))


MigrationCommand = Callable[[argparse.Namespace, Settings, Sequence["MigrationBranch"]], int]


def _migration_command(command: MigrationCommand) -> Callable[[argparse.Namespace], int]:
    """``command`` given the settings and the app's branches, once the extra is there.

    A failed migration, and a database that cannot be reached, are said in one line.
    """

    def handler(arguments: argparse.Namespace) -> int:
        try:
            from omnistack_core.db.migrations import MigrationError  # noqa: PLC0415 - the extra

            settings = load_settings()
            branches = branches_of(_modules(arguments))
        except (ConfigurationError, MissingDependencyError) as exc:
            # As a start reports it: the migration script is where a deploy starts.
            report(exc, OutputFormat.from_environment())
            return 1
        except ImportError as exc:
            print(
                f"error: cannot import the app {configured_app(arguments)}: {exc}", file=sys.stderr
            )
            return 1
        try:
            return command(arguments, settings, branches)
        except MigrationError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except Exception as exc:
            url = settings.migration_database_url.get_secret_value()
            problem = connection_problem(url, exc)
            if problem is None:
                raise
            print(f"error: {problem}", file=sys.stderr)
            return 1

    return handler


def _modules(arguments: argparse.Namespace) -> list[Module[Any]]:
    """The modules of the service's app, when the folder has one (``[tool.omnistack]``)."""
    spec = configured_app(arguments)
    return modules_of_app(spec) if spec is not None else []


@_migration_command
def _db_upgrade(
    arguments: argparse.Namespace, settings: Settings, branches: Sequence[MigrationBranch]
) -> int:
    from omnistack_core.db.migrations import (  # noqa: PLC0415 - checked
        MigrationError,
        direct_migration_url,
        upgrade,
    )

    print(f"migrating {redact_url(direct_migration_url(settings).get_secret_value())}")
    try:
        result = upgrade(
            arguments.config,
            settings=settings,
            lock_timeout=arguments.lock_timeout,
            branches=branches,
        )
    except MigrationError as exc:
        if exc.revision in {f"{branch.label}_0001" for branch in branches}:
            # A module's first revision (<label>_0001) failing is most likely its tables
            # being there already, made by the service's own first revision of old.
            raise MigrationError(
                f"{exc}; if this database was made before the modules shipped their "
                "migrations, run `omnistack db adopt` first",
                revision=exc.revision,
            ) from exc
        raise
    if result.waited_seconds >= 1:
        print(f"waited {result.waited_seconds:.1f} s for another runner's migration lock")
    if result.ahead:
        print(
            f"the database is at {result.before}, newer than this release's migrations: "
            "left as it is (a rollback runs against the newer schema)"
        )
        return 0
    print(f"before:  {result.before or '(empty database)'}")
    if result.applied:
        print(f"applied: {', '.join(result.applied)}")
    else:
        print("applied: nothing, the database was up to date")
    print(f"after:   {result.after or '(empty database)'}")
    return 0


@_migration_command
def _db_downgrade(
    arguments: argparse.Namespace, settings: Settings, branches: Sequence[MigrationBranch]
) -> int:
    from omnistack_core.db.migrations import (  # noqa: PLC0415 - present: checked
        direct_migration_url,
        downgrade,
    )

    print(f"migrating {redact_url(direct_migration_url(settings).get_secret_value())}")
    result = downgrade(
        arguments.revision,
        arguments.config,
        settings=settings,
        lock_timeout=arguments.lock_timeout,
        branches=branches,
    )
    print(f"before:     {result.before or '(empty database)'}")
    print(f"downgraded: {', '.join(result.applied) or 'nothing'}")
    print(f"after:      {result.after or '(empty database)'}")
    return 0


@_migration_command
def _db_current(
    arguments: argparse.Namespace, settings: Settings, branches: Sequence[MigrationBranch]
) -> int:
    from omnistack_core.db.migrations import current  # noqa: PLC0415 - present: checked

    state = current(arguments.config, settings=settings, branches=branches)
    if state.unknown:
        print(f"current: {', '.join(state.current)} (newer than these migrations)")
        return 0
    at = state.at
    heads = state.by_branch(state.heads)
    pending = state.by_branch(state.pending)
    width = max(len(branch) for branch in heads)
    for branch in heads:
        where = ", ".join(at.get(branch, [])) or "(nothing applied)"
        waiting = ", ".join(pending.get(branch, [])) or "nothing"
        print(f"{branch:<{width}}  at {where}; head {', '.join(heads[branch])}; pending {waiting}")
    return 0


@_migration_command
def _db_check(
    arguments: argparse.Namespace, settings: Settings, branches: Sequence[MigrationBranch]
) -> int:
    from omnistack_core.db.migrations import check  # noqa: PLC0415 - present: checked

    state = check(arguments.config, settings=settings, branches=branches)
    problems = [
        f"the {branch} branch has several heads ({', '.join(heads)}): merge them with "
        f"`alembic merge -m merge {' '.join(heads)}`"
        for branch, heads in state.split_branches.items()
    ]
    if state.unknown:
        problems.append(
            f"the database is at {', '.join(state.unknown)}, which these migrations do not "
            "have: a newer release applied it"
        )
    problems += [
        f"pending revisions of {branch}, not applied: {', '.join(revisions)}"
        for branch, revisions in state.by_branch(state.pending).items()
    ]
    problems += [f"models differ from the migrations: {diff}" for diff in state.drift]
    if state.drift:
        problems.append("write the revision: alembic revision --autogenerate -m '...'")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        branches_at = ", ".join(
            f"{branch} at {', '.join(revisions)}" for branch, revisions in state.at.items()
        )
        print(f"ok: {branches_at or 'no revisions'}; every branch at its head, the models agree")
    return 1 if problems else 0


@_migration_command
def _db_adopt(
    arguments: argparse.Namespace, settings: Settings, branches: Sequence[MigrationBranch]
) -> int:
    from omnistack_core.db.adoption import adopt  # noqa: PLC0415 - present: checked

    modules = _modules(arguments)
    metadata = {
        branch.label: list(module.metadata())
        for module in modules
        if (branch := module.migrations()) is not None
    }
    outcomes = adopt(
        arguments.config,
        branches=branches,
        metadata=metadata,
        settings=settings,
        lock_timeout=arguments.lock_timeout,
    )
    for outcome in outcomes:
        print(f"{outcome.label}: {outcome.outcome} ({outcome.revision})")
        for difference in outcome.differences:
            print(f"  - {difference}")
    if not outcomes:
        print("no module with tables is installed: nothing to adopt")
    return 1 if any(outcome.outcome == "refused" for outcome in outcomes) else 0


def _db_lint(arguments: argparse.Namespace) -> int:
    try:
        from omnistack_core.db import lint  # noqa: PLC0415
        from omnistack_core.db.migrations import MigrationError  # noqa: PLC0415
    except ImportError as exc:
        print(exc, file=sys.stderr)
        return 1
    if arguments.rules:
        for rule in lint.RULES.values():
            print(f"{rule.id}\n  why: {rule.why}\n  instead: {rule.instead}")
        return 0
    try:
        branches = branches_of(_modules(arguments))
        report = lint.lint_migrations(
            arguments.config,
            since=arguments.since,
            large_table_rows=arguments.large_table_rows,
            branches=branches,
        )
    except (ConfigurationError, MigrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    render = lint.render_json if arguments.format == "json" else lint.render_text
    sys.stdout.write(render(report))
    return 0 if report.ok else 1
