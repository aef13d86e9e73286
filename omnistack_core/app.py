"""The app factory: one FastAPI app composed from settings and modules."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.applications import Starlette

from omnistack_core.body_limit import BodySizeLimitMiddleware
from omnistack_core.errors import ConfigProblem, ConfigurationError, install_problem_handlers
from omnistack_core.health.checks import HealthCheck, register_check
from omnistack_core.health.router import router as health_router
from omnistack_core.module import Module
from omnistack_core.settings import Settings, load_settings

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

    The app serves the health endpoints, renders every error as problem+json, opens the
    database at start-up (``app.state.database``) and composes ``modules``: their routers
    under ``/api/v1``, their readiness checks, and their lifespans, entered in order after
    the database and left in reverse before it closes.

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
    """
    settings = _settings_for(modules, settings)
    fastapi_options.setdefault("title", settings.service_name)
    app = FastAPI(lifespan=_composed_lifespan(settings, modules, lifespan), **fastapi_options)
    app.state.settings = settings
    app.state.modules = tuple(modules)
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_body_bytes)

    app.include_router(health_router, prefix=API_PREFIX)
    register_check(app, HealthCheck("database", _ping_database))
    for module in modules:
        for check in module.health_checks(settings):
            register_check(app, check)
        for router in module.routers(settings):
            app.include_router(router, prefix=API_PREFIX)
    return app


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


def _composed_settings_class(classes: list[type[Settings]]) -> type[Settings]:
    if not classes:
        return Settings
    if len(classes) == 1:
        return classes[0]
    # One class with every module's fields, so one validation reports every problem.
    return type("ServiceSettings", tuple(classes), {})


def _composed_lifespan(
    settings: Settings, modules: Sequence[Module], app_lifespan: Lifespan | None
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
            for module in modules:
                await stack.enter_async_context(module.lifespan(app, settings))
            if app_lifespan is not None:
                await stack.enter_async_context(app_lifespan(app))
            yield

    return lifespan


async def _ping_database(app: Starlette) -> None:
    await app.state.database.ping()
