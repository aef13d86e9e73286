"""The smallest OmniStack service: health endpoints, a public route and a signed-in one.

Run it from this folder with ``uvicorn app:app`` (``README.md`` shows how, and how to get a
token). Settings come from the environment and ``.env``: ``SECRET_KEY`` signs development
tokens, ``AUTH_PROVIDER`` (``dev`` by default in development) picks who issues them.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from pydantic import BaseModel

from omnistack_core import API_PREFIX, create_app
from omnistack_core.auth import AuthModule, CurrentUser, OptionalUser, auth_metadata


class Greeting(BaseModel):
    """What the hello routes answer."""

    message: str
    user_id: str | None


@asynccontextmanager
async def create_tables(app: FastAPI) -> AsyncIterator[None]:
    """Create the auth module's ``users`` table where it is missing.

    The auth module records each signed-in user there. A service creates its tables with
    migrations (the template's Alembic setup); this one-file example has none.
    """
    async with app.state.database.engine.begin() as connection:
        await connection.run_sync(auth_metadata.create_all)
    yield


app = create_app(modules=[AuthModule()], lifespan=create_tables, title="OmniStack minimal")


@app.get(f"{API_PREFIX}/public/hello")
async def public_hello(user: OptionalUser) -> Greeting:
    """Anyone may call this; a valid token only changes the greeting (an invalid one is 401)."""
    if user is None:
        return Greeting(message="Hello, stranger.", user_id=None)
    return Greeting(message=f"Hello again, {user.email or user.id}.", user_id=user.id)


@app.get(f"{API_PREFIX}/hello")
async def hello(user: CurrentUser) -> Greeting:
    """Only for signed-in callers: 401 problem+json without a valid bearer token."""
    return Greeting(message=f"Hello, {user.email or user.id}.", user_id=user.id)
