"""``omnistack serve``: the production start command, uvicorn with every connection bounded.

Every generated platform file starts the API with it. It builds the service's app once (a
bad setting is one block, as at any start), then serves it on ``PORT`` with the bounds of
:mod:`omnistack_core.cli.http_bounds` from the ``SERVER_*`` settings, drains for
``SHUTDOWN_GRACE_SECONDS`` on SIGTERM, and believes ``X-Forwarded-For`` (or the header
``FORWARDED_CLIENT_IP_HEADER`` names) only from the peers ``FORWARDED_ALLOW_IPS`` names.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from omnistack_core.cli.client_address import TrustedPeers, client_from_header
from omnistack_core.cli.service_app import add_app_option, app_spec, load_app_or_report
from omnistack_core.errors import (
    ConfigurationError,
    ModuleNotRunningError,
)
from omnistack_core.installation import Installation
from omnistack_core.settings import Settings, load_settings
from omnistack_core.startup_errors import OutputFormat, report

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp


def add_commands(commands: Any) -> None:
    """Add ``serve``."""
    serve = commands.add_parser(
        "serve",
        help="serve the app in production, every connection bounded (the start command)",
        description="Build the app, then serve it with uvicorn on PORT: headers up to "
        "SERVER_MAX_HEADER_BYTES, received within SERVER_HEADER_TIMEOUT_SECONDS, bodies within "
        "SERVER_BODY_TIMEOUT_SECONDS, idle connections closed after SERVER_KEEPALIVE_SECONDS, "
        "at most SERVER_MAX_CONNECTIONS at once, SHUTDOWN_GRACE_SECONDS to drain on SIGTERM, "
        "and X-Forwarded-For (or FORWARDED_CLIENT_IP_HEADER) believed only from "
        "FORWARDED_ALLOW_IPS.",
    )
    add_app_option(serve)
    serve.add_argument("--host", default="0.0.0.0", help="interface to bind (0.0.0.0)")  # noqa: S104 - a container's port
    serve.set_defaults(handler=_serve)


def _serve(arguments: argparse.Namespace) -> int:
    app = load_app_or_report(app_spec(arguments))
    if app is None:
        return 1
    try:
        settings = _settings_of(app)
    except ConfigurationError as exc:
        report(exc, OutputFormat.from_environment())
        return 1
    try:
        import uvicorn  # noqa: PLC0415 - the serve extra

        from omnistack_core.cli.http_bounds import ServerBounds  # noqa: PLC0415 - the serve extra
    except ImportError:
        print(
            "error: omnistack serve needs uvicorn: pip install 'omnistack-core[serve]'",
            file=sys.stderr,
        )
        return 1
    bounds = ServerBounds.from_settings(settings)
    trusted = [peer.strip() for peer in settings.forwarded_allow_ips.split(",") if peer.strip()]
    served: ASGIApp = app
    header = settings.forwarded_client_ip_header
    if header and trusted:
        served = client_from_header(app, TrustedPeers(trusted), header)
    config = uvicorn.Config(
        served,
        host=arguments.host,
        port=settings.port,
        http=bounds.protocol(),
        h11_max_incomplete_event_size=bounds.max_header_bytes,
        timeout_keep_alive=bounds.keepalive_seconds,
        limit_concurrency=bounds.max_connections,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        proxy_headers=bool(trusted) and not header,
        forwarded_allow_ips=trusted or None,
        # The app configured logging when it was built, and writes its own access lines.
        log_config=None,
        access_log=False,
        server_header=False,
    )
    uvicorn.Server(config).run()
    return 0


def _settings_of(app: FastAPI) -> Settings:
    """The core settings the app was built with, else those of the environment."""
    try:
        settings = Installation.of(app).settings
    except ModuleNotRunningError:
        return load_settings()
    return settings if isinstance(settings, Settings) else load_settings()
