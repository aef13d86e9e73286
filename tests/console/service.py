"""Apps with the console, built as a service builds them, for the console's tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from omnistack_core import Module, Settings, create_app, load_settings, settings_class_for
from omnistack_core.console import ConsoleModule

SECRET_KEY = "console-test-key-" + "k" * 32


def console_app(
    modules: Sequence[Module[Any]] = (), *, environment: str = "test", **values: Any
) -> FastAPI:
    """An app with ``modules`` and the console, settings given as values (no environment)."""
    installed = [*modules, ConsoleModule()]
    values.setdefault("database_url", "sqlite+aiosqlite:///:memory:")
    settings = load_settings(
        settings_class_for(installed, base=Settings),
        environment=environment,
        secret_key=SECRET_KEY,
        service_name="console-test",
        **values,
    )
    return create_app(settings, modules=installed)
