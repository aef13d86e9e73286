"""Installing modules into an app: settings composed and validated, routers, checks, lifespans.

:func:`install` puts chosen modules into any FastAPI app, with the app's own settings object
(or the modules' variables read from the environment, optionally under a prefix), its own
database engine, and its own error format. :func:`~omnistack_core.create_app` builds a new
service on the same call. What the modules share while the app runs is an
:class:`Installation`, kept on the app::

    app = FastAPI(lifespan=my_lifespan)
    install(app, [AuthModule(), BillingModule()], database=engine, env_prefix="OMNISTACK_")
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from fastapi import FastAPI
from starlette.applications import Starlette

from omnistack_core.errors import ConfigProblem, ConfigurationError, ModuleNotRunningError
from omnistack_core.health.checks import register_check
from omnistack_core.health.readiness import configure_readiness
from omnistack_core.module import Module
from omnistack_core.module_settings import (
    ModuleSettings,
    is_unset,
    requirement_validator,
)
from omnistack_core.settings import load_settings, secret_values, variable_name
from omnistack_core.startup_errors import exit_cleanly_when_uncaught

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine

    from omnistack_core.db.session import Database

API_PREFIX = "/api/v1"

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]
ResourceT = TypeVar("ResourceT")
BaseT = TypeVar("BaseT", bound=ModuleSettings)
JobFunction = Callable[..., Awaitable[Any]]


class Installation:
    """The modules installed in one app, their settings, and what they share while it runs.

    Reached with :meth:`of`; modules put what they build here at start-up (:meth:`provide`)
    and their ``of(app)`` classmethods read it back.

    Attributes:
        settings: The settings every module was given: an instance of each module's class.
        modules: The installed modules, in start-up order.
        prefix: Where the modules' routers are mounted (``/api/v1``).
        env_prefix: The prefix of the modules' environment variables, for messages.
        database: The database the modules use: the one given to :func:`install`, or the
            one ``create_app`` opens at start-up, before the modules' lifespans.
        redis: The shared Redis client, when there is one.
    """

    def __init__(
        self,
        settings: ModuleSettings,
        modules: Sequence[Module[Any]],
        *,
        prefix: str,
        env_prefix: str = "",
    ) -> None:
        self.settings = settings
        self.modules = tuple(modules)
        self.prefix = prefix
        self.env_prefix = env_prefix
        self.database: Database | None = None
        self.redis: Redis | None = None
        self._resources: dict[str, object] = {}

    @classmethod
    def of(cls, app: Starlette) -> Installation:
        """The installation of ``app``.

        Raises:
            ModuleNotRunningError: No module was installed in ``app``.
        """
        installation = getattr(app.state, "omnistack", None)
        if not isinstance(installation, Installation):
            raise ModuleNotRunningError(
                "no OmniStack module is installed in this app: build it with create_app() "
                "or call install(app, [...])"
            )
        return installation

    def installed(self, name: str) -> bool:
        """Whether a module named ``name`` is installed."""
        return any(module.name == name for module in self.modules)

    def provide(self, name: str, resource: object) -> None:
        """Offer the running resource of module ``name`` (its lifespan calls this).

        It stays after shutdown, closed, so a test can inspect it; a restart replaces it.
        """
        self._resources[name] = resource

    def resource(self, name: str, kind: type[ResourceT]) -> ResourceT:
        """The running resource of module ``name``, a ``kind``.

        Raises:
            ModuleNotRunningError: The module is not installed, or the app is not running.
            TypeError: What the module provided is not a ``kind``.
        """
        try:
            resource = self._resources[name]
        except KeyError:
            module = name.partition(".")[0]
            state = "has not started" if self.installed(module) else "is not installed"
            raise ModuleNotRunningError(
                f"the {module} module {state} in this app: install it (create_app(modules="
                "[...]) or install(app, [...])) and use it while the app runs"
            ) from None
        if not isinstance(resource, kind):
            raise TypeError(f"{name} provides a {type(resource).__name__}, not a {kind.__name__}")
        return resource

    def require_database(self) -> Database:
        """The database, for modules that keep tables.

        Raises:
            ModuleNotRunningError: The app has not started, or was installed without one.
        """
        if self.database is None:
            raise ModuleNotRunningError(
                "the modules' database is not open: the app has not started, or install() "
                "was given no database"
            )
        return self.database

    def jobs(self) -> list[JobFunction]:
        """Every job the installed modules contribute, in module order."""
        return [job for module in self.modules for job in module.jobs()]


def resource_of(app: Starlette, name: str, kind: type[ResourceT]) -> ResourceT:
    """The running resource ``name`` of ``app``'s modules (what ``Module.of(app)`` returns).

    Raises:
        ModuleNotRunningError: The module is not installed in ``app``, or it has not started.
        TypeError: What the module provided is not a ``kind``.
    """
    installation = getattr(app.state, "omnistack", None)
    if not isinstance(installation, Installation):
        module = name.partition(".")[0]
        raise ModuleNotRunningError(
            f"the {module} module is not installed in this app: create_app(modules=[...]) "
            "or install(app, [...]) with it"
        )
    return installation.resource(name, kind)


def install(
    app: FastAPI,
    modules: Sequence[Module[Any]],
    *,
    settings: ModuleSettings | None = None,
    database: Database | AsyncEngine | None = None,
    redis: Redis | None = None,
    prefix: str = API_PREFIX,
    env_prefix: str = "",
    env_file: str | Path | None = ".env",
) -> Installation:
    """Install ``modules`` into an existing FastAPI app.

    The modules' settings are validated at once (every problem in one
    :class:`~omnistack_core.ConfigurationError`), their routers are mounted under ``prefix``
    (paths in their responses follow), their readiness checks registered (see
    :func:`~omnistack_core.health.readiness_report`), and their lifespans run inside the
    app's own: after it starts, before it stops. Errors they raise for clients are
    ``HTTPException`` subclasses, so the app's own handlers render them; add
    :func:`~omnistack_core.errors.install_problem_handlers` for problem+json.

    Args:
        app: The app.
        modules: The modules, in start-up order.
        settings: An instance of every module's settings class (a class of the app's own may
            inherit them all); when None, the modules' variables are read from the
            environment.
        database: The app's database (a :class:`~omnistack_core.db.Database`, or an
            ``AsyncEngine`` it wraps), for modules that keep tables. The app disposes of it.
        redis: A ``redis.asyncio.Redis`` client modules share (AI quotas), if any.
        prefix: Where to mount the modules' routers.
        env_prefix: With ``settings`` None, read ``<env_prefix>NAME`` (``OMNISTACK_``).
        env_file: With ``settings`` None, the dotenv file read besides the environment.

    Returns:
        The installation, also reachable as ``Installation.of(app)``.

    Raises:
        ConfigurationError: Listing every problem with the modules and their settings.
    """
    keeps_tables = [module.name for module in modules if module.metadata()]
    if database is None and keeps_tables:
        raise ConfigurationError(
            [
                ConfigProblem(
                    "database",
                    f"the {', '.join(keeps_tables)} module(s) keep tables: pass the app's "
                    "database (an AsyncEngine) to install(database=...)",
                )
            ]
        )
    try:
        loaded = compose_settings(modules, settings, env_prefix=env_prefix, env_file=env_file)
    except ConfigurationError as exc:
        exc.modules = tuple(modules)
        exit_cleanly_when_uncaught(exc)
        raise
    installation = attach(app, modules, loaded, prefix=prefix, env_prefix=env_prefix)
    installation.database = _as_database(database) if database is not None else None
    installation.redis = redis
    wrap_lifespan(app, installation)
    return installation


@overload
def settings_class_for(modules: Sequence[Module[Any]], *, base: type[BaseT]) -> type[BaseT]: ...
@overload
def settings_class_for(
    modules: Sequence[Module[Any]], *, base: None = ...
) -> type[ModuleSettings]: ...
def settings_class_for(
    modules: Sequence[Module[Any]], *, base: type[ModuleSettings] | None = None
) -> type[ModuleSettings]:
    """One settings class composing ``base`` and the settings classes of ``modules``.

    Loading it validates every module's variables at once, with the requirements the
    module instances add (:meth:`Module.requirements`): what ``create_app`` and
    :func:`install` load when they are given no settings. Tests load it with values::

        settings = load_settings(settings_class_for(modules, base=Settings), environment="test")

    Args:
        modules: The modules.
        base: A class composed first (the core's :class:`~omnistack_core.Settings`).

    Raises:
        ConfigurationError: The modules cannot be installed together (no name, installed
            twice, a required module missing, settings classes that clash).
    """
    classes = _checked_classes(modules, base)
    if not classes:
        classes = [ModuleSettings]
    extra = [(module, req) for module in modules for req in module.requirements()]
    if len(classes) == 1 and not extra:
        return classes[0]
    # One class with every module's fields, so one validation reports every problem.
    namespace: dict[str, Any] = {"__module__": __name__}
    for module, requirement in extra:
        namespace[f"_{module.name}_module_{requirement.field}_required"] = requirement_validator(
            requirement
        )
    return type("ServiceSettings", tuple(classes), namespace)


@overload
def compose_settings(
    modules: Sequence[Module[Any]],
    settings: ModuleSettings | None,
    *,
    base: type[BaseT],
    env_prefix: str = ...,
    env_file: str | Path | None = ...,
) -> BaseT: ...
@overload
def compose_settings(
    modules: Sequence[Module[Any]],
    settings: ModuleSettings | None,
    *,
    base: None = ...,
    env_prefix: str = ...,
    env_file: str | Path | None = ...,
) -> ModuleSettings: ...
def compose_settings(
    modules: Sequence[Module[Any]],
    settings: ModuleSettings | None,
    *,
    base: type[ModuleSettings] | None = None,
    env_prefix: str = "",
    env_file: str | Path | None = ".env",
) -> ModuleSettings:
    """Give ``modules`` their settings: ``settings`` checked against them, or loaded.

    Args:
        modules: The modules.
        settings: Settings the caller built; None loads :func:`settings_class_for`.
        base: A class composed first (the core's :class:`~omnistack_core.Settings`).
        env_prefix: The variables' prefix, when loading.
        env_file: The dotenv file, when loading.

    Raises:
        ConfigurationError: Listing every problem with the modules and their settings.
    """
    if settings is None:
        composed = settings_class_for(modules, base=base)
        return load_settings(composed, env_file=env_file, env_prefix=env_prefix)
    missing = [
        cls.__name__ for cls in _checked_classes(modules, base) if not isinstance(settings, cls)
    ]
    if missing:
        raise ConfigurationError(
            [
                ConfigProblem(
                    "settings",
                    f"the modules need settings that inherit {', '.join(missing)}: pass such "
                    "an instance (see settings_class_for), or none and let them be loaded",
                )
            ]
        )
    problems = [
        ConfigProblem(variable_name(type(settings), req.field, env_prefix), req.message(reason))
        for module in modules
        for req in module.requirements()
        if is_unset(getattr(settings, req.field, None))
        and (reason := req.reason(settings.environment, settings.__dict__, env_prefix)) is not None
    ]
    if problems:
        raise ConfigurationError(problems)
    return settings


def _checked_classes(
    modules: Sequence[Module[Any]], base: type[ModuleSettings] | None
) -> list[type[ModuleSettings]]:
    problems = _module_problems(modules)
    classes = [base] if base is not None else []
    classes += [m.settings_class for m in modules if m.settings_class is not None]
    classes = _most_derived(list(dict.fromkeys(classes)))
    problems += [
        ConfigProblem("modules", f"{cls.__name__} must subclass ModuleSettings")
        for cls in classes
        if not issubclass(cls, ModuleSettings)
    ]
    problems += _shadowed_validators(classes)
    if problems:
        raise ConfigurationError(problems)
    return classes


def attach(
    app: FastAPI,
    modules: Sequence[Module[Any]],
    settings: ModuleSettings,
    *,
    prefix: str,
    env_prefix: str = "",
) -> Installation:
    """Keep the installation on ``app``, mount the routers and register the checks."""
    if isinstance(getattr(app.state, "omnistack", None), Installation):
        raise ConfigurationError(
            [
                ConfigProblem(
                    "modules",
                    "modules are already installed in this app: install them all in one call",
                )
            ]
        )
    installation = Installation(settings, modules, prefix=prefix, env_prefix=env_prefix)
    app.state.omnistack = installation
    configure_readiness(app, secrets=secret_values(settings))
    for module in modules:
        for check in module.health_checks(settings):
            register_check(app, check)
        for router in module.routers(settings):
            app.include_router(router, prefix=prefix)
        for page in module.pages(settings):
            app.include_router(page)
    return installation


def wrap_lifespan(app: FastAPI, installation: Installation) -> None:
    """Run the modules' lifespans inside ``app``'s: after it has started, before it stops."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with AsyncExitStack() as stack:
            state = await stack.enter_async_context(inner(app))
            for module in installation.modules:
                await stack.enter_async_context(module.lifespan(app, installation.settings))
            yield state

    app.router.lifespan_context = lifespan


def _module_problems(modules: Sequence[Module[Any]]) -> list[ConfigProblem]:
    problems = []
    seen: set[str] = set()
    for module in modules:
        if not module.name:
            problems.append(ConfigProblem("modules", f"{type(module).__name__} has no name"))
        elif module.name in seen:
            problems.append(ConfigProblem("modules", f"{module.name!r} is installed twice"))
        seen.add(module.name)
    for module in modules:
        problems += [
            ConfigProblem(
                "modules",
                f"the {module.name} module needs the {needed} module: install it too",
            )
            for needed in module.requires
            if needed not in seen
        ]
    return problems


def _most_derived(classes: list[type[ModuleSettings]]) -> list[type[ModuleSettings]]:
    """``classes`` without those another one already inherits (or the MRO cannot be made)."""
    return [
        cls
        for cls in classes
        if not any(other is not cls and issubclass(other, cls) for other in classes)
    ]


def _shadowed_validators(classes: list[type[ModuleSettings]]) -> list[ConfigProblem]:
    """Validators of two settings classes with one name: composed, one would replace the other.

    Pydantic finds validators by attribute name along the MRO, so in the composed class the
    first module's ``_check_secret`` hides the second's and its variable goes unchecked.
    """
    owners: dict[str, type[ModuleSettings]] = {}
    problems = []
    for cls in classes:
        if not issubclass(cls, ModuleSettings):
            continue
        decorators = cls.__pydantic_decorators__
        for name in sorted({*decorators.field_validators, *decorators.model_validators}):
            owner = owners.setdefault(name, cls)
            if owner is cls or issubclass(cls, owner) or issubclass(owner, cls):
                continue
            if _defining_class(owner, name) is not _defining_class(cls, name):
                problems.append(
                    ConfigProblem(
                        "modules",
                        f"{owner.__name__} and {cls.__name__} both define a validator {name}: "
                        "rename one, or one of them goes unchecked",
                    )
                )
    return problems


def _defining_class(cls: type, name: str) -> type:
    return next(base for base in cls.__mro__ if name in vars(base))


def _as_database(database: Database | AsyncEngine) -> Database:
    from omnistack_core.db.session import Database  # noqa: PLC0415 - SQLAlchemy, when used

    return database if isinstance(database, Database) else Database(database)
