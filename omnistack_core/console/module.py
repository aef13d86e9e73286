"""``ConsoleModule``: the operator console under ``/console``."""

from __future__ import annotations

import importlib
import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import APIRouter, FastAPI
from pydantic import SecretStr
from starlette.applications import Starlette

from omnistack_core.console.samples import sampling
from omnistack_core.console.settings import ConsoleSettings
from omnistack_core.console.state import ConsoleState
from omnistack_core.installation import Installation
from omnistack_core.module import Module

logger = logging.getLogger("omnistack.console")

SECTIONS = ("jobs", "billing", "email", "ai")
"""The sections the console can show, each for the module of the same name."""


class ConsoleModule(Module[ConsoleSettings]):
    """Web pages for operators: failed jobs, webhook events, suppressions, AI spend.

    Install it last, ``create_app(modules=[..., ConsoleModule()])``: the pages show each
    installed module among ``jobs``, ``billing``, ``email`` and ``ai``, and act through
    those modules' own operations. It is served under ``/console`` everywhere but in
    production, where ``CONSOLE_ENABLED=true`` turns it on. Nobody gets in without a link from
    ``omnistack console-link`` or, with the auth module, ``CONSOLE_ROLE``.

    Args:
        sections: The sections to offer, among :data:`SECTIONS`.
    """

    name = "console"
    settings_class = ConsoleSettings

    def __init__(self, *, sections: Sequence[str] = SECTIONS) -> None:
        unknown = set(sections) - set(SECTIONS)
        if unknown:
            raise ValueError(f"unknown console sections: {', '.join(sorted(unknown))}")
        self.sections = tuple(sections)

    @classmethod
    def of(cls, app: Starlette) -> ConsoleState:
        """The running app's console.

        Raises:
            ModuleNotRunningError: The app does not run the console module.
        """
        return ConsoleState.of(app)

    def pages(self, settings: ConsoleSettings) -> Sequence[APIRouter]:
        """The console's pages under ``/console``, unless it is off."""
        if not settings.console_on:
            return []
        names = ("assets", "login", "overview", *self._available())
        return [
            importlib.import_module(f"omnistack_core.console.{name}_pages").router for name in names
        ]

    def _available(self) -> list[str]:
        available = []
        for section in self.sections:
            try:
                importlib.import_module(f"omnistack_core.{section}")
            except ImportError:
                continue  # the module's extra is not installed, so it cannot be in this app
            available.append(section)
        return available

    def summary(self, settings: ConsoleSettings) -> str:
        """Whether the console is served, and to whom."""
        if not settings.console_on:
            return "off (CONSOLE_ENABLED=true serves it in production)"
        who = (
            f"permission {settings.console_permission}"
            if settings.console_permission
            else f"role {settings.console_role}"
        )
        return f"/console: console-link sessions, or signed-in users with {who}"

    def lifespan(
        self, app: FastAPI, settings: ConsoleSettings
    ) -> AbstractAsyncContextManager[None]:
        """Offer the console's state (key, templates, spent links) while the app runs."""
        return self._running(app, settings)

    @asynccontextmanager
    async def _running(self, app: FastAPI, settings: ConsoleSettings) -> AsyncIterator[None]:
        installation = Installation.of(app)
        # The core's SECRET_KEY and SERVICE_NAME: create_app always has them, an app given
        # to install() may not.
        secret = getattr(settings, "secret_key", None)
        key = secret.get_secret_value() if isinstance(secret, SecretStr) else ""
        service = str(getattr(settings, "service_name", "") or app.title)
        if not key:
            # Links from the CLI cannot match a key made here; the auth module's sign-in still
            # works.
            logger.warning("No SECRET_KEY: console links cannot be used in this process")
            key = secrets.token_urlsafe(48)
        sections = tuple(s for s in self._available() if installation.installed(s))
        installation.provide(
            self.name, ConsoleState(settings, service, key, sections, installation.redis)
        )
        async with sampling(app, settings.console_sample_seconds):
            yield
