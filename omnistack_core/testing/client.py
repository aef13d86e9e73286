"""An HTTP client that talks to an app in-process, with its lifespan running."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send


@asynccontextmanager
async def app_client(
    app: FastAPI, *, base_url: str = "http://testserver"
) -> AsyncIterator[httpx.AsyncClient]:
    """Start ``app`` (its lifespan runs) and yield a client that calls it without a socket.

    Exceptions the app does not handle come back as the 500 response a real client would
    see, not as a raised exception.

    Args:
        app: The application under test.
        base_url: The URL the requests appear to go to.

    Yields:
        The client; the app shuts down when the block ends.
    """
    async with app.router.lifespan_context(app) as state:
        transport = httpx.ASGITransport(app=_with_state(app, state), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


def _with_state(app: ASGIApp, state: Mapping[str, Any] | None) -> ASGIApp:
    """``app``, its requests given the lifespan's state as a server gives it (a copy each)."""
    if not state:
        return app

    async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, "state": dict(state)}, receive, send)

    return with_state
