"""Apps with the email module, shared by the email tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from omnistack_core import Settings, create_app
from omnistack_core.email import EmailModule, EmailSettings, email_metadata
from omnistack_core.settings import load_settings
from omnistack_core.testing import app_client

SENDER = "Acme <hello@acme.example.com>"


class ServiceSettings(Settings, EmailSettings):
    """The settings of a service with the email module."""


def email_app(module: EmailModule | None = None, **settings: Any) -> FastAPI:
    """An app with the email module and the given settings (field names)."""
    return create_app(load_settings(ServiceSettings, **settings), modules=[module or EmailModule()])


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Start ``app``, create the email tables in its database, and yield a client."""
    async with app_client(app) as client:
        async with app.state.database.engine.begin() as connection:
            await connection.run_sync(email_metadata.create_all)
        yield client
