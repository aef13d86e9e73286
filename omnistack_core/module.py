"""The module protocol: how an optional capability plugs into :func:`~omnistack_core.create_app`.

A module is one object describing what it adds to a service: a settings class, routers,
readiness checks, SQLAlchemy metadata and a lifespan. ``create_app`` composes them: it loads
every module's settings into one validated object (one error lists every problem), mounts the
routers under ``/api/v1``, registers the checks, and enters the lifespans in order at start-up
and leaves them in reverse at shutdown.

It is a base class rather than a ``typing.Protocol`` so that a hook added in a later release
comes with a default and breaks no existing module.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import TYPE_CHECKING, ClassVar

from fastapi import APIRouter, FastAPI

from omnistack_core.health.checks import HealthCheck
from omnistack_core.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import MetaData


class Module:
    """Base class of the modules ``create_app`` composes; override what the module offers.

    Example::

        class Greeter(Module):
            name = "greeter"

            def routers(self, settings: Settings) -> Sequence[APIRouter]:
                return [greeter_router]

    Attributes:
        name: Unique, short, lower-case name (``auth``, ``billing``).
        settings_class: A :class:`Settings` subclass declaring the module's own variables,
            or None when the base settings are enough.
    """

    name: ClassVar[str] = ""
    settings_class: ClassVar[type[Settings] | None] = None

    def routers(self, settings: Settings) -> Sequence[APIRouter]:
        """Routers to mount under ``/api/v1``."""
        return ()

    def health_checks(self, settings: Settings) -> Sequence[HealthCheck]:
        """Checks added to ``GET /api/v1/public/health/ready``."""
        return ()

    def metadata(self) -> Sequence[MetaData]:
        """SQLAlchemy metadata of the module's tables, for migrations."""
        return ()

    def lifespan(self, app: FastAPI, settings: Settings) -> AbstractAsyncContextManager[None]:
        """Start-up and shutdown: entered once the database is ready, left before it closes.

        Resources belong on ``app.state``. The settings are an instance of ``settings_class``
        when the module declares one.
        """
        return nullcontext()
