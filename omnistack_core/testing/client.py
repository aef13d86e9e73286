"""An HTTP client that talks to an app in-process, with its lifespan running."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI


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
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=base_url) as client,
    ):
        yield client
