"""The app's own engine and session dependency."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from .settings import AppSettings


def create_engine(settings: AppSettings) -> AsyncEngine:
    """The app's engine: one pool, shared by its routes and the modules it installs."""
    return create_async_engine(
        settings.database_url, pool_size=settings.db_pool_size, pool_pre_ping=True
    )


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for the request; the route commits what it writes."""
    async with request.app.state.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]
"""The request's database session: ``async def route(session: Session)``."""
