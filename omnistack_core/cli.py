"""The ``omnistack`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from omnistack_core import __version__
from omnistack_core.errors import ConfigurationError
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
    return parser


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
