"""The module contract: how an optional capability plugs into an app.

A module is one object describing what it adds to a service: its settings class (its own
variables only), routers, readiness checks, SQLAlchemy metadata and the Alembic branch that
migrates it, jobs, the modules it needs, and a lifespan. :func:`~omnistack_core.create_app`
composes them into a new service, and :func:`~omnistack_core.install` into an existing
FastAPI app: every module's settings are
validated together (one error lists every problem), routers are mounted under one prefix,
checks are registered, and lifespans are entered in order at start-up and left in reverse.

While the app runs, a module's resources (a client, a queue) are reached through the module
class: ``BillingModule.of(app)``, never through ad-hoc ``app.state`` keys.

It is a base class rather than a ``typing.Protocol`` so that a hook added in a later release
comes with a default and breaks no existing module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import TYPE_CHECKING, Any, ClassVar, Generic

from fastapi import APIRouter, FastAPI
from typing_extensions import TypeVar

from omnistack_core.health.checks import HealthCheck
from omnistack_core.migration_branch import MigrationBranch
from omnistack_core.module_settings import ModuleSettings, Requirement

if TYPE_CHECKING:
    from sqlalchemy import MetaData

SettingsT = TypeVar("SettingsT", bound=ModuleSettings, default=ModuleSettings)


class Module(Generic[SettingsT]):
    """Base class of the modules ``create_app`` and ``install`` compose; override what it offers.

    Example::

        class Greeter(Module[GreeterSettings]):
            name = "greeter"
            settings_class = GreeterSettings

            def routers(self, settings: GreeterSettings) -> Sequence[APIRouter]:
                return [greeter_router]

    Attributes:
        name: Unique, short, lower-case name (``auth``, ``billing``).
        settings_class: The module's :class:`~omnistack_core.module_settings.ModuleSettings`
            subclass, or None when it reads no variable. The hooks get an instance of it.
        requires: Names of the modules that must be installed beside this one; the app is
            refused at build time when one is missing.
    """

    name: ClassVar[str] = ""
    settings_class: type[SettingsT] | None = None
    requires: ClassVar[tuple[str, ...]] = ()

    def routers(self, settings: SettingsT) -> Sequence[APIRouter]:
        """Routers to mount under the app's API prefix (``/api/v1``)."""
        return ()

    def pages(self, settings: SettingsT) -> Sequence[APIRouter]:
        """Routers mounted at the app's root, outside the API prefix: pages for people.

        The console's ``/console`` is one; API routes belong in :meth:`routers`.
        """
        return ()

    def health_checks(self, settings: SettingsT) -> Sequence[HealthCheck]:
        """Checks added to readiness (``GET /api/v1/public/health/ready``)."""
        return ()

    def metadata(self) -> Sequence[MetaData]:
        """SQLAlchemy metadata of the module's tables, for migrations."""
        return ()

    def migrations(self) -> MigrationBranch | None:
        """The Alembic branch that creates and changes the module's tables, if it has any.

        A service's migrations apply it beside their own (``omnistack db upgrade``).
        """
        return None

    def jobs(self) -> Sequence[Callable[..., Awaitable[Any]]]:
        """Job functions (decorated with ``@job``) the module runs; the jobs module runs them."""
        return ()

    def requirements(self) -> Sequence[Requirement]:
        """Requirements that depend on how this instance was built, beyond its class's own.

        A plan given in code, say, makes ``BILLING_PLANS`` optional.
        """
        return ()

    def summary(self, settings: SettingsT) -> str:
        """What the settings give the module, in a few words and without a secret.

        ``omnistack check-config`` prints it: ``dev tokens``, ``console email``...
        """
        return "installed"

    def lifespan(self, app: FastAPI, settings: SettingsT) -> AbstractAsyncContextManager[None]:
        """Start-up and shutdown: entered once the database is ready, left before it closes.

        A module offers what it builds through :meth:`Installation.provide
        <omnistack_core.installation.Installation.provide>`, and its users reach it with a
        classmethod ``of(app)``.
        """
        return nullcontext()
