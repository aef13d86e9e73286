"""The app factory: one FastAPI app composed from settings and modules."""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.applications import Starlette

from omnistack_core.body_limit import BodySizeLimitMiddleware
from omnistack_core.errors import (
    ConfigurationError,
    MissingDependencyError,
    install_problem_handlers,
)
from omnistack_core.health.checks import HealthCheck, register_check
from omnistack_core.health.draining import drain_on_stop_signal
from omnistack_core.health.readiness import configure_readiness
from omnistack_core.health.router import router as health_router
from omnistack_core.installation import (
    API_PREFIX,
    Installation,
    Lifespan,
    attach,
    compose_settings,
    wrap_lifespan,
)
from omnistack_core.module import Module
from omnistack_core.observability.logs import configure_logging
from omnistack_core.observability.middleware import ObservabilityMiddleware
from omnistack_core.observability.sentry import init_sentry
from omnistack_core.openapi import describe_problems
from omnistack_core.redis_connection import open_redis, ping_redis, require_redis_client
from omnistack_core.settings import Settings
from omnistack_core.startup_errors import StartupFailureMiddleware, exit_cleanly_when_uncaught

if TYPE_CHECKING:
    from omnistack_core.observability.metrics import HttpMetrics

__all__ = ["API_PREFIX", "create_app"]


def create_app(
    settings: Settings | None = None,
    modules: Sequence[Module[Any]] = (),
    *,
    lifespan: Lifespan | None = None,
    **fastapi_options: Any,
) -> FastAPI:
    """Build the FastAPI app of an OmniStack service.

    The app configures logging (and Sentry when ``SENTRY_DSN`` is set), gives every request an
    id, an access-log line and metrics, serves the health and metrics endpoints, renders every
    error as problem+json, opens the database (``app.state.database``) and Redis
    (``app.state.redis``, when ``REDIS_URL`` is set) at start-up, and installs ``modules``
    (:func:`~omnistack_core.install`): their routers under ``/api/v1``, their readiness
    checks, and their lifespans, entered in order after the database and left in reverse
    before it closes.

    Args:
        settings: The settings; when None they are loaded from the environment with the
            settings classes of ``modules`` composed into one.
        modules: The optional modules to install, in start-up order.
        lifespan: The app's own lifespan, entered last and left first.
        **fastapi_options: Passed to :class:`~fastapi.FastAPI` (``title``, ``version``...).

    Returns:
        The application.

    Raises:
        ConfigurationError: Listing every problem with the settings and the modules.
        MissingDependencyError: The settings need an extra that is not installed.
    """
    try:
        loaded = compose_settings(modules, settings, base=Settings)
        metrics = _http_metrics(loaded)
        if loaded.redis_url is not None:
            require_redis_client()
    except ConfigurationError as exc:
        exc.modules = tuple(modules)
        exit_cleanly_when_uncaught(exc)
        raise
    except MissingDependencyError as exc:
        exit_cleanly_when_uncaught(exc)
        raise
    configure_logging(loaded)
    init_sentry(loaded)

    fastapi_options.setdefault("title", loaded.service_name)
    if not loaded.serves_api_docs:
        for option in ("docs_url", "redoc_url", "openapi_url"):
            fastapi_options.setdefault(option, None)
    app = FastAPI(lifespan=_core_lifespan(loaded, metrics=metrics is not None), **fastapi_options)
    app.state.settings = loaded
    configure_readiness(app, cache_seconds=loaded.health_cache_seconds)
    install_problem_handlers(app)
    describe_problems(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=loaded.max_request_body_bytes)
    # Added after the body limit, so outside it: it sees every response, 413s and 500s too.
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    app.add_middleware(StartupFailureMiddleware, settings=loaded)

    _add_routes(app, health_router, API_PREFIX)
    if metrics is not None:
        from omnistack_core.observability.metrics import metrics_router  # noqa: PLC0415

        _add_routes(app, metrics_router(loaded), API_PREFIX)
    timeout = loaded.health_check_timeout
    register_check(app, HealthCheck("database", _ping_database, timeout=timeout))
    if loaded.redis_url is not None:
        register_check(app, HealthCheck("redis", ping_redis, timeout=timeout))
    installation = attach(app, modules, loaded, prefix=API_PREFIX)
    app.state.modules = installation.modules
    wrap_lifespan(app, installation)
    if lifespan is not None:
        _enter_last(app, lifespan)
    return app


# What an APIRoute was declared with, besides its path and endpoint: the names of its
# constructor's parameters, which it keeps as attributes of the same names.
_ROUTE_OPTIONS = tuple(
    name
    for name in inspect.signature(APIRoute.__init__).parameters
    if name not in ("self", "path", "endpoint", "dependency_overrides_provider")
)


def _add_routes(app: FastAPI, router: APIRouter, prefix: str) -> None:
    """Add ``router``'s routes to the app itself, under ``prefix``.

    Rather than ``include_router``: FastAPI walks every included router a request passes on
    its way to its route, which costs several microseconds per router and per route, on every
    request to the routes that come after these ones (all of a service's own).
    """
    for route in router.routes:
        if not isinstance(route, APIRoute):  # pragma: no cover - the core's routers hold none
            raise TypeError(f"{route!r} is not an APIRoute")
        options = {name: getattr(route, name) for name in _ROUTE_OPTIONS}
        app.router.add_api_route(prefix + route.path, route.endpoint, **options)


def _http_metrics(settings: Settings) -> HttpMetrics | None:
    installed = importlib.util.find_spec("prometheus_client") is not None
    enabled = installed if settings.metrics_enabled is None else settings.metrics_enabled
    if not enabled:
        return None
    if not installed:
        raise MissingDependencyError("observability.metrics", "observability")
    # Imported only now: without the observability extra there is nothing to import.
    from omnistack_core.observability.metrics import HttpMetrics  # noqa: PLC0415

    return HttpMetrics()


def _core_lifespan(settings: Settings, *, metrics: bool) -> Lifespan:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Imported here, not at the top: SQLAlchemy is the largest import of a cold start,
        # and building the app object (for OpenAPI export, or the CLI) does not need it.
        from omnistack_core.db.session import Database  # noqa: PLC0415

        installation = Installation.of(app)
        async with AsyncExitStack() as stack:
            database = Database.from_settings(settings)
            stack.push_async_callback(database.dispose)
            app.state.database = installation.database = database
            if metrics:
                from omnistack_core.observability.db_metrics import (  # noqa: PLC0415
                    instrument_engine,
                )

                instrument_engine(database.engine)
            if settings.redis_url is not None:
                redis = open_redis(settings.redis_url, settings.health_check_timeout)
                app.state.redis = installation.redis = redis
                stack.push_async_callback(redis.aclose)
            await stack.enter_async_context(drain_on_stop_signal(app))
            yield

    return lifespan


def _enter_last(app: FastAPI, app_lifespan: Lifespan) -> None:
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with inner(app) as state, app_lifespan(app):
            yield state

    app.router.lifespan_context = lifespan


async def _ping_database(app: Starlette) -> None:
    await app.state.database.ping()
