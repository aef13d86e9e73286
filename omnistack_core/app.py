"""The app factory: one FastAPI app composed from settings and modules."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.applications import Starlette

from omnistack_core.body_limit import BodySizeLimitMiddleware
from omnistack_core.errors import (
    ConfigProblem,
    ConfigurationError,
    MissingDependencyError,
    install_problem_handlers,
)
from omnistack_core.health.checks import HealthCheck, ReadinessCache, register_check
from omnistack_core.health.draining import drain_on_stop_signal
from omnistack_core.health.router import router as health_router
from omnistack_core.module import Module
from omnistack_core.observability.logs import configure_logging
from omnistack_core.observability.middleware import ObservabilityMiddleware
from omnistack_core.observability.sentry import init_sentry
from omnistack_core.redis_connection import open_redis, ping_redis, require_redis_client
from omnistack_core.settings import Settings, load_settings

if TYPE_CHECKING:
    from omnistack_core.observability.metrics import HttpMetrics

API_PREFIX = "/api/v1"

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(
    settings: Settings | None = None,
    modules: Sequence[Module] = (),
    *,
    lifespan: Lifespan | None = None,
    **fastapi_options: Any,
) -> FastAPI:
    """Build the FastAPI app of an OmniStack service.

    The app configures logging (and Sentry when ``SENTRY_DSN`` is set), gives every request an
    id, an access-log line and metrics, serves the health and metrics endpoints, renders every
    error as problem+json, opens the database (``app.state.database``) and Redis
    (``app.state.redis``, when ``REDIS_URL`` is set) at start-up, and composes ``modules``:
    their routers under ``/api/v1``, their readiness checks, and their lifespans, entered in
    order after the database and left in reverse before it closes.

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
    settings = _settings_for(modules, settings)
    configure_logging(settings)
    init_sentry(settings)
    metrics = _http_metrics(settings)
    if settings.redis_url is not None:
        require_redis_client()

    fastapi_options.setdefault("title", settings.service_name)
    app = FastAPI(
        lifespan=_composed_lifespan(settings, modules, lifespan, metrics=metrics is not None),
        **fastapi_options,
    )
    app.state.settings = settings
    app.state.modules = tuple(modules)
    app.state.readiness_cache = ReadinessCache(settings.health_cache_seconds)
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    # Added last, so outermost: it sees every response, the 413s and 500s included.
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)

    app.include_router(health_router, prefix=API_PREFIX)
    if metrics is not None:
        from omnistack_core.observability.metrics import metrics_router  # noqa: PLC0415

        app.include_router(metrics_router(settings), prefix=API_PREFIX)
    timeout = settings.health_check_timeout
    register_check(app, HealthCheck("database", _ping_database, timeout=timeout))
    if settings.redis_url is not None:
        register_check(app, HealthCheck("redis", ping_redis, timeout=timeout))
    for module in modules:
        for check in module.health_checks(settings):
            register_check(app, check)
        for router in module.routers(settings):
            app.include_router(router, prefix=API_PREFIX)
    return app


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


def _settings_for(modules: Sequence[Module], settings: Settings | None) -> Settings:
    problems = []
    seen: set[str] = set()
    for module in modules:
        if not module.name:
            problems.append(ConfigProblem("modules", f"{type(module).__name__} has no name"))
        elif module.name in seen:
            problems.append(ConfigProblem("modules", f"{module.name!r} is installed twice"))
        seen.add(module.name)
    classes = list(dict.fromkeys(m.settings_class for m in modules if m.settings_class))
    problems += [
        ConfigProblem("modules", f"{cls.__name__} must subclass Settings")
        for cls in classes
        if not issubclass(cls, Settings)
    ]
    problems += _shadowed_validators(classes)
    if problems:
        raise ConfigurationError(problems)
    if settings is None:
        return load_settings(_composed_settings_class(classes))
    missing = [cls.__name__ for cls in classes if not isinstance(settings, cls)]
    if missing:
        raise ConfigurationError(
            [
                ConfigProblem(
                    "settings",
                    f"the modules need settings that inherit {', '.join(missing)}: "
                    "pass such an instance, or none and let create_app load them",
                )
            ]
        )
    return settings


def _shadowed_validators(classes: list[type[Settings]]) -> list[ConfigProblem]:
    """Validators of two settings classes with one name: composed, one would replace the other.

    Pydantic finds validators by attribute name along the MRO, so in the composed class the
    first module's ``_check_secret`` hides the second's and its variable goes unchecked.
    """
    owners: dict[str, str] = {}
    problems = []
    for cls in classes:
        if not issubclass(cls, Settings):
            continue
        decorators = cls.__pydantic_decorators__
        names = {*decorators.field_validators, *decorators.model_validators}
        for name in sorted(names - _CORE_VALIDATORS):
            if name in owners and owners[name] != cls.__name__:
                problems.append(
                    ConfigProblem(
                        "modules",
                        f"{owners[name]} and {cls.__name__} both define a validator {name}: "
                        "rename one, or one of them goes unchecked",
                    )
                )
            owners.setdefault(name, cls.__name__)
    return problems


_CORE_VALIDATORS = frozenset(
    {
        *Settings.__pydantic_decorators__.field_validators,
        *Settings.__pydantic_decorators__.model_validators,
    }
)


def _composed_settings_class(classes: list[type[Settings]]) -> type[Settings]:
    if not classes:
        return Settings
    if len(classes) == 1:
        return classes[0]
    # One class with every module's fields, so one validation reports every problem.
    return type("ServiceSettings", tuple(classes), {})


def _composed_lifespan(
    settings: Settings, modules: Sequence[Module], app_lifespan: Lifespan | None, *, metrics: bool
) -> Lifespan:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Imported here, not at the top: SQLAlchemy is the largest import of a cold start,
        # and building the app object (for OpenAPI export, or the CLI) does not need it.
        from omnistack_core.db.session import Database  # noqa: PLC0415

        async with AsyncExitStack() as stack:
            database = Database.from_settings(settings)
            stack.push_async_callback(database.dispose)
            app.state.database = database
            if metrics:
                from omnistack_core.observability.db_metrics import (  # noqa: PLC0415
                    instrument_engine,
                )

                instrument_engine(database.engine)
            if settings.redis_url is not None:
                app.state.redis = open_redis(settings.redis_url, settings.health_check_timeout)
                stack.push_async_callback(app.state.redis.aclose)
            await stack.enter_async_context(drain_on_stop_signal(app))
            for module in modules:
                await stack.enter_async_context(module.lifespan(app, settings))
            if app_lifespan is not None:
                await stack.enter_async_context(app_lifespan(app))
            yield

    return lifespan


async def _ping_database(app: Starlette) -> None:
    await app.state.database.ping()
