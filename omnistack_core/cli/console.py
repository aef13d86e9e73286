"""``omnistack console-link``: a short-lived link that signs an operator in to the console."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any
from urllib.parse import quote


def add_commands(commands: Any) -> None:
    """Add ``console-link``."""
    link = commands.add_parser(
        "console-link",
        help="print a one-time link that signs you in to the operator console",
        description="Sign a login link for /console with the service's SECRET_KEY (read from "
        "the environment and .env, as the service reads it). The link works once, for "
        "CONSOLE_LINK_MINUTES; run this where the service's variables are, e.g. a platform's "
        "shell.",
    )
    link.add_argument(
        "--url",
        default=None,
        help="the service's base URL (default: http://localhost:$PORT)",
    )
    link.add_argument(
        "--operator",
        default=None,
        help="who signs in, as the audit log will name them (default: your login name)",
    )
    link.set_defaults(handler=_console_link)


def _console_link(arguments: argparse.Namespace) -> int:
    try:
        from pydantic import SecretStr  # noqa: PLC0415

        from omnistack_core.console import ConsoleSettings, mint_link  # noqa: PLC0415
        from omnistack_core.errors import ConfigurationError  # noqa: PLC0415
        from omnistack_core.settings import load_settings  # noqa: PLC0415

        class LinkSettings(ConsoleSettings):
            # The core's SECRET_KEY alone: the rest of the core's variables (the database)
            # are not needed to sign a link.
            secret_key: SecretStr | None = None

        settings = load_settings(LinkSettings)
    except (ImportError, ConfigurationError) as exc:
        print(exc, file=sys.stderr)
        return 1
    key = settings.secret_key.get_secret_value() if settings.secret_key else ""
    if not key:
        print(
            "SECRET_KEY is not set: console links are signed with the service's SECRET_KEY, so "
            "set the same value here (environment or .env)",
            file=sys.stderr,
        )
        return 1
    if not settings.console_on:
        print(
            "note: the console is off in this environment (CONSOLE_ENABLED=true turns it on)",
            file=sys.stderr,
        )
    operator = arguments.operator or getpass.getuser()
    base = (arguments.url or f"http://localhost:{os.environ.get('PORT', '8000')}").rstrip("/")
    token = mint_link(key, operator, minutes=settings.console_link_minutes)
    print(f"{base}/console/login?token={quote(token)}")
    return 0
