"""The ``omnistack`` command."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omnistack_core import __version__
from omnistack_core.errors import ConfigProblem, ConfigurationError
from omnistack_core.redaction import redact_url
from omnistack_core.settings import Settings, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``omnistack`` command line.

    Args:
        argv: The arguments after the program name; ``sys.argv[1:]`` when None.

    Returns:
        The process exit status.
    """
    parser = _parser()
    arguments = parser.parse_args(argv)
    if arguments.command is None:
        parser.print_help()
        return 2
    status: int = arguments.handler(arguments)
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omnistack", description="OmniStack service tools.")
    parser.add_argument("--version", action="version", version=f"omnistack-core {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = commands.add_parser(
        "check-config",
        help="validate the settings of this environment and summarise them",
        description="Load the settings from the environment and .env; print every problem "
        "(exit 1) or what is enabled (exit 0). Secrets are never printed.",
    )
    check.add_argument(
        "--env-file", default=".env", help="dotenv file to read (default: .env; '' for none)"
    )
    check.set_defaults(handler=_check_config)

    auth = commands.add_parser("auth", help="authentication tools")
    auth_commands = auth.add_subparsers(dest="auth_command", metavar="COMMAND", required=True)
    dev_token = auth_commands.add_parser(
        "dev-token",
        help="print a development token the dev auth provider accepts",
        description="Sign a token with SECRET_KEY for AUTH_PROVIDER=dev (local work, tests). "
        "Refused in production.",
    )
    dev_token.add_argument("--sub", required=True, help="the user id")
    dev_token.add_argument("--email", help="the user's email address")
    dev_token.add_argument("--role", action="append", default=[], help="a role (repeatable)")
    dev_token.add_argument(
        "--permission", action="append", default=[], help="a permission (repeatable)"
    )
    dev_token.add_argument("--ttl", type=float, default=3600, help="seconds it lasts (3600)")
    dev_token.add_argument("--env-file", default=".env", help="dotenv file to read")
    dev_token.set_defaults(handler=_dev_token)

    _add_db_commands(commands)

    check = commands.add_parser(
        "worker-check",
        help="exit 0 when a jobs worker refreshed its health key recently (a health command)",
        description="Read the worker's health key in REDIS_URL: set by every live worker every "
        "JOBS_HEALTH_CHECK_SECONDS. Exit 1 when it is missing or Redis does not answer.",
    )
    check.set_defaults(handler=_worker_check)

    jobs = commands.add_parser("jobs", help="background jobs that failed")
    jobs_commands = jobs.add_subparsers(dest="jobs_command", metavar="COMMAND", required=True)
    failed = jobs_commands.add_parser("failed", help="list the jobs that failed for good")
    failed.set_defaults(handler=_jobs_failed)
    retry = jobs_commands.add_parser("retry", help="enqueue a failed job again")
    retry.add_argument("job_id", help="the id `omnistack jobs failed` shows")
    retry.set_defaults(handler=_jobs_retry)

    billing = commands.add_parser("billing", help="billing repair: sync from Stripe, replay")
    billing_commands = billing.add_subparsers(
        dest="billing_command", metavar="COMMAND", required=True
    )
    sync = billing_commands.add_parser(
        "sync",
        help="fetch every customer's subscriptions from Stripe and correct stored state",
        description="Start the app, list each known customer's subscriptions at Stripe and "
        "replace stored rows that differ. Safe to run at any time.",
    )
    replay = billing_commands.add_parser(
        "replay",
        help="process again the stored Stripe events that failed",
        description="Start the app and run the events whose handling failed through the same "
        "path as the webhook, oldest first. Exit 1 when any fails again.",
    )
    replay.add_argument("--limit", type=int, default=100, help="events to replay at most (100)")
    for command in (sync, replay):
        command.add_argument("--app", default="app.main:app", help="the app (app.main:app)")
    sync.set_defaults(handler=_billing_sync)
    replay.set_defaults(handler=_billing_replay)

    dev = commands.add_parser(
        "dev",
        help="migrate and serve the app with reload (development only)",
        description="Apply migrations, then run uvicorn app.main:app with auto-reload on PORT.",
    )
    dev.add_argument("--app", default="app.main:app", help="the ASGI app (app.main:app)")
    dev.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    dev.add_argument("--no-reload", action="store_true", help="do not restart on code changes")
    dev.set_defaults(handler=_dev)
    return parser


def _add_db_commands(commands: Any) -> None:
    database = commands.add_parser("db", help="database migrations")
    db_commands = database.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    upgrade = db_commands.add_parser(
        "upgrade",
        help="migrate the database to head, under a lock (what deploys run)",
        description="Upgrade to the latest revision while holding a Postgres advisory lock, so "
        "instances starting together migrate once. Uses DATABASE_DIRECT_URL when set.",
    )
    upgrade.add_argument("--config", default="alembic.ini", help="Alembic config (alembic.ini)")
    upgrade.add_argument(
        "--lock-timeout", type=float, default=300.0, help="seconds to wait for the lock (300)"
    )
    upgrade.set_defaults(handler=_db_upgrade)
    downgrade = db_commands.add_parser(
        "downgrade",
        help="migrate the database back to a revision, under the same lock",
        description="Downgrade to REV (a revision id, -1 for one step back, base for an "
        "empty schema) while holding the migration lock. Uses DATABASE_DIRECT_URL when set.",
    )
    downgrade.add_argument("revision", metavar="REV", help="the revision to go back to")
    downgrade.add_argument("--config", default="alembic.ini", help="Alembic config (alembic.ini)")
    downgrade.add_argument(
        "--lock-timeout", type=float, default=300.0, help="seconds to wait for the lock (300)"
    )
    downgrade.set_defaults(handler=_db_downgrade)
    current = db_commands.add_parser(
        "current", help="show the database's revision and what an upgrade would apply"
    )
    current.add_argument("--config", default="alembic.ini", help="Alembic config (alembic.ini)")
    current.set_defaults(handler=_db_current)
    db_check = db_commands.add_parser(
        "check",
        help="exit 1 on pending revisions, several heads, or models that differ (for CI)",
        description="Fail when the database is not at the single head, or when the models "
        "and the migrations disagree (a model change without a revision).",
    )
    db_check.add_argument("--config", default="alembic.ini", help="Alembic config (alembic.ini)")
    db_check.set_defaults(handler=_db_check)
    lint = db_commands.add_parser(
        "lint",
        help="flag migrations that lock tables or break the running code (exit 1)",
        description="Read the SQL Alembic would run for the pending revisions (those after "
        "--since, or those the database has not applied) and flag unsafe statements. A "
        "comment '# omnistack-lint: allow RULE -- reason' in a revision allows RULE there.",
    )
    lint.add_argument("--config", default="alembic.ini", help="Alembic config (alembic.ini)")
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


def _check_config(arguments: argparse.Namespace) -> int:
    try:
        settings = load_settings(env_file=arguments.env_file or None)
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 1
    width = max(len(name) for name, _ in describe(settings))
    for name, value in describe(settings):
        print(f"{name:<{width}}  {value}")
    return 0


def _dev_token(arguments: argparse.Namespace) -> int:
    try:
        from omnistack_core.auth.dev import mint_dev_token  # noqa: PLC0415 - auth extra
    except ImportError as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        settings = load_settings(env_file=arguments.env_file or None)
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 1
    if settings.environment == "production":
        print("dev tokens are refused in production", file=sys.stderr)
        return 1
    if "secret_key" not in settings.model_fields_set:
        # Without SECRET_KEY each process makes up its own: the server would refuse the token.
        print(
            "SECRET_KEY is not set (environment or .env): the server could not verify this token",
            file=sys.stderr,
        )
        return 1
    token = mint_dev_token(
        settings.secret_key.get_secret_value(),
        arguments.sub,
        email=arguments.email,
        roles=arguments.role,
        permissions=arguments.permission,
        ttl=arguments.ttl,
    )
    print(token)
    return 0


def _migration_settings() -> Settings | None:
    """The settings, once the migrations extra is known to be there; None after saying why."""
    try:
        import omnistack_core.db.migrations  # noqa: F401, PLC0415 - needs the migrations extra

        return load_settings()
    except (ImportError, ConfigurationError) as exc:
        print(exc, file=sys.stderr)
        return None


def _db_upgrade(arguments: argparse.Namespace) -> int:
    settings = _migration_settings()
    if settings is None:
        return 1
    from omnistack_core.db.migrations import MigrationError, upgrade  # noqa: PLC0415 - present: checked

    print(f"migrating {redact_url(settings.migration_database_url.get_secret_value())}")
    try:
        result = upgrade(arguments.config, settings=settings, lock_timeout=arguments.lock_timeout)
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
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


def _db_downgrade(arguments: argparse.Namespace) -> int:
    settings = _migration_settings()
    if settings is None:
        return 1
    from omnistack_core.db.migrations import MigrationError, downgrade  # noqa: PLC0415 - present: checked

    print(f"migrating {redact_url(settings.migration_database_url.get_secret_value())}")
    try:
        result = downgrade(
            arguments.revision,
            arguments.config,
            settings=settings,
            lock_timeout=arguments.lock_timeout,
        )
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"before:     {result.before or '(empty database)'}")
    print(f"downgraded: {', '.join(result.applied) or 'nothing'}")
    print(f"after:      {result.after or '(empty database)'}")
    return 0


def _db_current(arguments: argparse.Namespace) -> int:
    settings = _migration_settings()
    if settings is None:
        return 1
    from omnistack_core.db.migrations import current  # noqa: PLC0415 - present: checked

    state = current(arguments.config, settings=settings)
    newer = " (newer than these migrations)" if state.unknown else ""
    print(f"current: {', '.join(state.current) or '(empty database)'}{newer}")
    print(f"heads:   {', '.join(state.heads)}")
    print(f"pending: {', '.join(state.pending) or 'nothing'}")
    return 0


def _db_check(arguments: argparse.Namespace) -> int:
    settings = _migration_settings()
    if settings is None:
        return 1
    from omnistack_core.db.migrations import check  # noqa: PLC0415 - present: checked

    state = check(arguments.config, settings=settings)
    problems = []
    if len(state.heads) > 1:
        problems.append(
            f"several heads ({', '.join(state.heads)}): merge them with `alembic merge heads`"
        )
    if state.unknown:
        problems.append(
            f"the database is at {', '.join(state.unknown)}, which these migrations do not "
            "have: a newer release applied it"
        )
    if state.pending:
        problems.append(f"pending revisions, not applied: {', '.join(state.pending)}")
    problems += [f"models differ from the migrations: {diff}" for diff in state.drift]
    if state.drift:
        problems.append("write the revision: alembic revision --autogenerate -m '...'")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print(f"ok: at {', '.join(state.current)}, the single head, and the models agree")
    return 1 if problems else 0


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
        report = lint.lint_migrations(
            arguments.config, since=arguments.since, large_table_rows=arguments.large_table_rows
        )
    except (ConfigurationError, MigrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    render = lint.render_json if arguments.format == "json" else lint.render_text
    sys.stdout.write(render(report))
    return 0 if report.ok else 1


def _jobs_settings() -> Any:
    from omnistack_core.jobs import JobsSettings  # noqa: PLC0415 - the jobs extra

    settings = load_settings(JobsSettings)
    if settings.redis_url is None:
        raise ConfigurationError([ConfigProblem("REDIS_URL", "required to reach the workers")])
    return settings


async def _with_redis(settings: Any, work: Callable[[Any], Awaitable[int]]) -> int:
    from redis.asyncio import Redis  # noqa: PLC0415 - the jobs extra

    client = Redis.from_url(
        settings.redis_url.get_secret_value(), socket_connect_timeout=5, socket_timeout=5
    )
    try:
        return await work(client)
    finally:
        await client.aclose()


def _worker_check(arguments: argparse.Namespace) -> int:  # noqa: ARG001 - no options
    try:
        settings = _jobs_settings()
    except (ConfigurationError, ImportError) as exc:
        print(exc, file=sys.stderr)
        return 1

    from redis.exceptions import RedisError  # noqa: PLC0415 - the jobs extra brings redis

    async def check(client: Any) -> int:
        try:
            state = await client.get(f"{settings.jobs_queue_name}:health-check")
        except (OSError, RedisError) as exc:
            print(f"unhealthy: Redis does not answer ({type(exc).__name__})", file=sys.stderr)
            return 1
        if state is None:
            print("unhealthy: no worker refreshed its health key", file=sys.stderr)
            return 1
        print(f"healthy: {state.decode()}")
        return 0

    return asyncio.run(_with_redis(settings, check))


def _jobs_failed(arguments: argparse.Namespace) -> int:  # noqa: ARG001 - no options
    try:
        settings = _jobs_settings()
    except (ConfigurationError, ImportError) as exc:
        print(exc, file=sys.stderr)
        return 1
    from omnistack_core.jobs import FailedJobs  # noqa: PLC0415 - the jobs extra

    async def show(client: Any) -> int:
        failed = await FailedJobs(client, settings.jobs_queue_name).list()
        for entry in failed:
            when = datetime.fromtimestamp(entry.failed_at, UTC).isoformat(timespec="seconds")
            print(f"{entry.job_id}  {entry.job}  {when}  attempts={entry.attempts}  {entry.error}")
        print(f"{len(failed)} failed jobs")
        return 0

    return asyncio.run(_with_redis(settings, show))


def _jobs_retry(arguments: argparse.Namespace) -> int:
    try:
        settings = _jobs_settings()
    except (ConfigurationError, ImportError) as exc:
        print(exc, file=sys.stderr)
        return 1
    from arq import create_pool  # noqa: PLC0415 - the jobs extra

    from omnistack_core.jobs import FailedJobs  # noqa: PLC0415 - the jobs extra
    from omnistack_core.jobs.serialization import dumps, loads  # noqa: PLC0415
    from omnistack_core.jobs.worker import redis_settings  # noqa: PLC0415

    async def retry(client: Any) -> int:
        entry = await FailedJobs(client, settings.jobs_queue_name).take(arguments.job_id)
        if entry is None:
            print(f"no failed job {arguments.job_id}", file=sys.stderr)
            return 1
        pool = await create_pool(
            redis_settings(settings.redis_url.get_secret_value()),
            job_serializer=dumps,
            job_deserializer=loads,
        )
        try:
            # A new id: the failed job's own stays taken while arq keeps its result.
            job_id = f"{entry.job_id}:retry:{int(entry.failed_at)}"
            await pool.enqueue_job(
                entry.job,
                *entry.args,
                _job_id=job_id,
                _queue_name=settings.jobs_queue_name,
                **entry.kwargs,
            )
        finally:
            await pool.aclose()
        print(f"enqueued {entry.job} again as {job_id}")
        return 0

    return asyncio.run(_with_redis(settings, retry))


def _billing_sync(arguments: argparse.Namespace) -> int:
    async def sync(app: Any) -> int:
        report = await app.state.billing.sync()
        print(
            f"checked {report.subscriptions} subscriptions of {report.customers} customers; "
            f"corrected {report.corrected}"
        )
        return 0

    return _with_billing(arguments.app, sync)


def _billing_replay(arguments: argparse.Namespace) -> int:
    async def replay(app: Any) -> int:
        processed, failed = await app.state.billing_webhooks.replay_failed(limit=arguments.limit)
        print(f"replayed {processed + failed} events: {processed} processed, {failed} failed")
        return 1 if failed else 0

    return _with_billing(arguments.app, replay)


def _with_billing(spec: str, work: Callable[[Any], Awaitable[int]]) -> int:
    """Run ``work`` with the app at ``spec`` started, as its billing module sees it."""
    try:
        app = _import_app(spec)
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 1
    except (ImportError, AttributeError, ValueError) as exc:
        print(f"cannot load the app {spec}: {exc}", file=sys.stderr)
        return 1

    async def run() -> int:
        async with app.router.lifespan_context(app):
            if getattr(app.state, "billing", None) is None:
                print(f"{spec} has no BillingModule", file=sys.stderr)
                return 1
            return await work(app)

    try:
        return asyncio.run(run())
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 1


def _import_app(spec: str) -> Any:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError("expected module:attribute, e.g. app.main:app")
    # As uvicorn does: the service's package is found from the directory it runs in.
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    return getattr(importlib.import_module(module_name), attribute)


def _dev(arguments: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 1
    if settings.environment != "development":
        print("omnistack dev serves development only; use uvicorn directly", file=sys.stderr)
        return 1
    if Path("alembic.ini").exists():
        status = _db_upgrade(argparse.Namespace(config="alembic.ini", lock_timeout=30.0))
        if status:
            return status
    import uvicorn  # noqa: PLC0415 - a dependency of services, not of the library

    uvicorn.run(
        arguments.app,
        host=arguments.host,
        port=settings.port,
        reload=not arguments.no_reload,
        access_log=False,
    )
    return 0


def describe(settings: Settings) -> list[tuple[str, str]]:
    """What ``settings`` enable, one line per concern, with every secret left out.

    Args:
        settings: Loaded settings.

    Returns:
        ``(concern, description)`` pairs.
    """
    database = redact_url(settings.database_url.get_secret_value())
    if settings.db_use_null_pool:
        pool = "none (DB_USE_NULL_POOL: a connection per session, statement caches off)"
    else:
        pool = f"{settings.db_pool_size} connections (+{settings.db_max_overflow} overflow)"
    redis = settings.redis_url
    ai = [
        name
        for name, key in (
            ("openai", settings.openai_api_key),
            ("anthropic", settings.anthropic_api_key),
        )
        if key
    ]
    return [
        ("environment", settings.environment),
        ("service", settings.service_name),
        ("database", database),
        ("pool", pool),
        ("migrations", "DATABASE_DIRECT_URL" if settings.database_direct_url else "DATABASE_URL"),
        ("redis", redact_url(redis.get_secret_value()) if redis else "not configured"),
        ("auth", settings.auth_provider or "not configured"),
        (
            "sentry",
            f"on, traces {settings.sentry_traces_sample_rate:g}" if settings.sentry_dsn else "off",
        ),
        ("email", settings.email_provider or "not configured"),
        ("stripe", "configured" if settings.stripe_secret_key else "not configured"),
        ("ai", ", ".join(ai) or "not configured"),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
