"""``omnistack dev``: migrate, then serve the app with reload, in development."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from omnistack_core.cli.db import upgrade_for_development
from omnistack_core.cli.service_app import add_app_option, app_spec, load_app_or_report
from omnistack_core.installation import Installation
from omnistack_core.settings import Settings


def add_commands(commands: Any) -> None:
    """Add ``dev``."""
    dev = commands.add_parser(
        "dev",
        help="migrate and serve the app with reload (development only)",
        description="Check the app's settings, apply migrations, then run uvicorn with "
        "auto-reload on PORT.",
    )
    add_app_option(dev)
    dev.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    dev.add_argument("--no-reload", action="store_true", help="do not restart on code changes")
    dev.set_defaults(handler=_dev)


def _dev(arguments: argparse.Namespace) -> int:
    spec = app_spec(arguments)
    # Built here first: a bad setting is one block now, not a traceback in the reloader.
    app = load_app_or_report(spec)
    if app is None:
        return 1
    settings = Installation.of(app).settings
    if settings.environment != "development":
        print("omnistack dev serves development only; use uvicorn directly", file=sys.stderr)
        return 1
    if Path("alembic.ini").exists():
        status = upgrade_for_development("alembic.ini", spec)
        if status:
            return status
    import uvicorn  # noqa: PLC0415 - a dependency of services, not of the library

    port = settings.port if isinstance(settings, Settings) else 8000
    uvicorn.run(
        spec,
        host=arguments.host,
        port=port,
        reload=not arguments.no_reload,
        access_log=False,
    )
    return 0
