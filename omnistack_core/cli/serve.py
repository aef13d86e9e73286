"""``omnistack serve``: the production start command, uvicorn with every connection bounded.

Every generated platform file starts the API with it. It builds the service's app once (a
bad setting is one block, as at any start), then serves it on ``PORT`` with the bounds of
:mod:`omnistack_core.cli.http_bounds` from the ``SERVER_*`` settings, drains for
``SHUTDOWN_GRACE_SECONDS`` on SIGTERM, and believes ``X-Forwarded-For`` (or the header
``FORWARDED_CLIENT_IP_HEADER`` names) only from the peers ``FORWARDED_ALLOW_IPS`` names.

``WEB_CONCURRENCY`` above 1 runs that many worker processes under uvicorn's supervisor, each
serving the same way (:mod:`omnistack_core.cli.serve_workers`), with the metrics summed.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from omnistack_core.cli.client_address import TrustedPeers, client_from_header
from omnistack_core.cli.service_app import add_app_option, app_spec, load_app_or_report
from omnistack_core.errors import (
    ConfigurationError,
    ModuleNotRunningError,
)
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
        "FORWARDED_ALLOW_IPS; WEB_CONCURRENCY worker processes (1), metrics summed over them.",
    )
    add_app_option(serve)
    serve.add_argument("--host", default="0.0.0.0", help="interface to bind (0.0.0.0)")  # noqa: S104 - a container's port
    serve.set_defaults(handler=_serve)


def _serve(arguments: argparse.Namespace) -> int:
    if importlib.util.find_spec("uvicorn") is None:
        print(
            "error: omnistack serve needs uvicorn: pip install 'omnistack-core[serve]'",
            file=sys.stderr,
        )
        return 1
    spec = app_spec(arguments)
    settings = _settings_from_environment()
    if settings is None or settings.web_concurrency == 1:
        return _serve_one_process(spec, arguments.host)
    return _serve_workers(spec, arguments.host, settings)


def _serve_workers(spec: str, host: str, settings: Settings) -> int:
    """Check the app in a process of its own, then serve it from ``WEB_CONCURRENCY`` workers."""
    gc.enable()  # the supervisor builds no app, and lives as long as the container
    from omnistack_core.cli import serve_workers  # noqa: PLC0415 - the serve extra
    from omnistack_core.cli.http_bounds import ServerBounds  # noqa: PLC0415 - the serve extra

    trusted = _trusted_peers(settings)
    config = serve_workers.WorkerConfig(
        spec,
        bounds=ServerBounds.from_settings(settings),
        trusted=trusted,
        client_ip_header=settings.forwarded_client_ip_header,
        workers=settings.web_concurrency,
        **_server_options(settings, host, trusted),
    )
    metrics = serve_workers.MetricsDirectory()
    try:
        if not serve_workers.app_starts(spec):
            return 1
        metrics.prepare()
        supervisor = serve_workers.Supervisor(
            config, [serve_workers.listening_socket(config)], metrics
        )
        supervisor.run()
    finally:
        metrics.close()
    # uvicorn stops every worker when one cannot start; the platform should see it failed.
    return 1 if supervisor.failed_to_start else 0


def _serve_one_process(spec: str, host: str) -> int:
    """Build the app here and serve it in this process (``WEB_CONCURRENCY=1``)."""
    # The collector is off while the app is imported and built (omnistack_core.cli.main
    # turned it off): see _collect_once_started.
    import uvicorn  # noqa: PLC0415 - the serve extra

    from omnistack_core.cli.http_bounds import ServerBounds  # noqa: PLC0415 - the serve extra

    app = load_app_or_report(spec)
    if app is None:
        return 1
    _collect_once_started(app)
    try:
        settings = _settings_of(app)
    except ConfigurationError as exc:
        report(exc, OutputFormat.from_environment())
        return 1
    bounds = ServerBounds.from_settings(settings)
    trusted = _trusted_peers(settings)
    served: ASGIApp = app
    header = settings.forwarded_client_ip_header
    if header and trusted:
        served = client_from_header(app, TrustedPeers(trusted), header)
    config = uvicorn.Config(
        served,
        http=bounds.protocol(),
        **_server_options(settings, host, trusted),
    )
    uvicorn.Server(config).run()
    return 0


def _collect_once_started(app: FastAPI) -> None:
    """Turn the collector back on when the app's start-up is over, whether or not it worked.

    What start-up made is then moved out of the collector's sight (``gc.freeze``): it lives as
    long as the process, and later collections need not walk it again.
    """
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        try:
            async with inner(app) as state:
                _collect_from_now()
                yield state
        finally:
            _collect_from_now()

    app.router.lifespan_context = lifespan


def _collect_from_now() -> None:
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def _settings_from_environment() -> Settings | None:
    """The core settings, to learn ``WEB_CONCURRENCY``; None if they are invalid.

    Invalid settings are then reported by building the app in this process, which lists the
    modules' problems with the core's, as any start does.
    """
    try:
        return load_settings()
    except ConfigurationError:
        return None


def _trusted_peers(settings: Settings) -> list[str]:
    return [peer.strip() for peer in settings.forwarded_allow_ips.split(",") if peer.strip()]


def _server_options(settings: Settings, host: str, trusted: list[str]) -> dict[str, Any]:
    """The uvicorn options the settings give, the same for one process and for each worker."""
    header = settings.forwarded_client_ip_header
    return {
        "host": host,
        "port": settings.port,
        "h11_max_incomplete_event_size": settings.server_max_header_bytes,
        "timeout_keep_alive": settings.server_keepalive_seconds,
        "limit_concurrency": settings.server_max_connections,
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
        "proxy_headers": bool(trusted) and not header,
        "forwarded_allow_ips": trusted or None,
        # The app configures logging when it is built, and writes its own access lines.
        "log_config": None,
        "access_log": False,
        "server_header": False,
    }


def _settings_of(app: FastAPI) -> Settings:
    """The core settings the app was built with, else those of the environment."""
    # Here, not at the top: it imports FastAPI, which the WEB_CONCURRENCY supervisor needs not.
    from omnistack_core.installation import Installation  # noqa: PLC0415

    try:
        settings = Installation.of(app).settings
    except ModuleNotRunningError:
        return load_settings()
    return settings if isinstance(settings, Settings) else load_settings()
