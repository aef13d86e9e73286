"""``omnistack auth dev-token``: a token the dev auth provider accepts."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from omnistack_core.errors import ConfigurationError
from omnistack_core.module_settings import ModuleSettings
from omnistack_core.settings import load_settings


def add_commands(commands: Any) -> None:
    """Add ``auth dev-token``."""
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
    dev_token.add_argument(
        "--env-prefix",
        default="",
        help="read <PREFIX>SECRET_KEY and <PREFIX>ENVIRONMENT, as an app that installed the "
        "modules with install(env_prefix=...) does",
    )
    dev_token.set_defaults(handler=_dev_token)


def _dev_token(arguments: argparse.Namespace) -> int:
    try:
        from omnistack_core.auth import AuthSettings, mint_dev_token  # noqa: PLC0415 - auth extra
    except ImportError as exc:
        print(exc, file=sys.stderr)
        return 1
    env_file = arguments.env_file or None
    prefix = arguments.env_prefix
    try:
        environment = load_settings(ModuleSettings, env_file=env_file, env_prefix=prefix)
        if environment.environment == "production":
            print("dev tokens are refused in production", file=sys.stderr)
            return 1
        settings = load_settings(AuthSettings, env_file=env_file, env_prefix=prefix)
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 1
    if "secret_key" not in settings.model_fields_set or settings.secret_key is None:
        # Without SECRET_KEY each process makes up its own: the server would refuse the token.
        print(
            f"{prefix}SECRET_KEY is not set (environment or .env): the server could not verify "
            "this token",
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
