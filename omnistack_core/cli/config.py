"""``omnistack check-config`` and ``omnistack env``: the service's variables, judged and listed.

Both build the service's app (:mod:`omnistack_core.cli.service_app`), so ``check-config``
refuses exactly what a start refuses, with the same problem list, and ``env`` lists the
variables of exactly the modules the app installs.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from omnistack_core.cli.service_app import (
    AppNotFoundError,
    add_app_option,
    add_env_file_option,
    apply_env_file,
    configured_app,
    load_app,
)
from omnistack_core.errors import ConfigurationError, MissingDependencyError
from omnistack_core.installation import Installation
from omnistack_core.redaction import redact_url
from omnistack_core.settings import Settings, load_settings
from omnistack_core.startup_errors import OutputFormat, report
from omnistack_core.variables import Variable, render_dotenv, render_json, variables_of

if TYPE_CHECKING:
    from omnistack_core.module import Module


def add_commands(commands: Any) -> None:
    """Add ``check-config`` and ``env``."""
    check = commands.add_parser(
        "check-config",
        help="validate the service's settings as a start would, and summarise them",
        description="Build the service's app as the server does, from the environment and "
        ".env: print the problems a start would print (exit 1), or what each module gets "
        "(exit 0). Secrets are never printed.",
    )
    add_app_option(check)
    add_env_file_option(check)
    check.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="problems as a text block, or as the one JSON line a start logs in JSON mode",
    )
    check.set_defaults(handler=_check_config)

    env = commands.add_parser(
        "env",
        help="list every variable the service's modules read",
        description="The variables of the core and of each module the app installs: what "
        "they are, their defaults, and when they are required.",
    )
    add_app_option(env)
    env.add_argument("--format", choices=["dotenv", "json"], default="dotenv")
    env.set_defaults(handler=_env)


def _check_config(arguments: argparse.Namespace) -> int:
    spec = configured_app(arguments)
    try:
        apply_env_file(arguments)
        if spec is None:
            # No app to build: a library user, or a folder without a service.
            settings = load_settings()
            rows = describe(settings)
            rows.append(("modules", "no app found (--app, or [tool.omnistack] app)"))
        else:
            installation = Installation.of(load_app(spec))
            rows = _installation_rows(installation)
            rows += [
                (module.name, module.summary(installation.settings))
                for module in installation.modules
            ]
    except (ConfigurationError, MissingDependencyError) as exc:
        output = OutputFormat.from_environment()
        output.as_json = arguments.format == "json"
        report(exc, output)
        return 1
    except AppNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


def _env(arguments: argparse.Namespace) -> int:
    try:
        variables = _variables_of_app(configured_app(arguments))
    except (AppNotFoundError, MissingDependencyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    render = render_json if arguments.format == "json" else render_dotenv
    sys.stdout.write(render(variables))
    return 0


def modules_of(spec: str | None) -> list[Module[Any]]:
    """The modules the app at ``spec`` installs, even when its settings are refused.

    Raises:
        AppNotFoundError: ``spec`` does not name an app.
        MissingDependencyError: An extra the app needs is not installed.
    """
    if spec is None:
        return []
    try:
        app = load_app(spec)
    except ConfigurationError as exc:
        return list(exc.modules)
    return list(Installation.of(app).modules)


def _variables_of_app(spec: str | None) -> list[Variable]:
    """The variables of the app at ``spec``: the core's and its modules'.

    For modules installed into an app of its own, the modules' alone, under their prefix.
    """
    if spec is None:
        return variables_of([])
    try:
        installation = Installation.of(load_app(spec))
    except ConfigurationError as exc:
        return variables_of(list(exc.modules))
    if isinstance(installation.settings, Settings):
        return variables_of(installation.modules)
    return variables_of(installation.modules, base=None, prefix=installation.env_prefix)


def describe(settings: Settings) -> list[tuple[str, str]]:
    """What the core's ``settings`` enable, one line per concern, with every secret left out.

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
    return [
        ("environment", settings.environment),
        ("service", settings.service_name),
        ("database", database),
        ("pool", pool),
        ("migrations", "DATABASE_DIRECT_URL" if settings.database_direct_url else "DATABASE_URL"),
        ("redis", redact_url(redis.get_secret_value()) if redis else "not configured"),
        (
            "sentry",
            f"on, traces {settings.sentry_traces_sample_rate:g}" if settings.sentry_dsn else "off",
        ),
    ]


def _installation_rows(installation: Installation) -> list[tuple[str, str]]:
    settings = installation.settings
    if isinstance(settings, Settings):  # built by create_app
        return describe(settings)
    # Modules installed into an app of its own: its database is the one it gave install().
    database = installation.database
    url = database.engine.url.render_as_string(hide_password=True) if database else "none"
    return [("environment", settings.environment), ("database", url)]
