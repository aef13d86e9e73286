"""The app: ``uvicorn examples.existing_app.main:create_app --factory``.

It was a plain FastAPI app with its own settings, engine, models, migrations and error
format; :func:`~omnistack_core.install` adds OmniStack's auth and billing to it and changes
none of those.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.applications import Starlette

from omnistack_core import install
from omnistack_core.health import HealthCheck, register_check

from .database import create_engine
from .omnistack import omnistack_modules
from .routes import router
from .settings import AppSettings


def create_app(settings: AppSettings | None = None) -> FastAPI:
    """Build the app from ``settings``, or from the environment when None.

    Raises:
        ConfigurationError: The modules' variables (``OMNISTACK_...``) are invalid; it lists
            every problem at once.
    """
    settings = settings or AppSettings()
    engine = create_engine(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = FastAPI(
        title="Notes",
        lifespan=lifespan,
        docs_url=None if settings.environment == "prod" else "/docs",
    )
    app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    app.include_router(router)

    # The modules' variables are read as OMNISTACK_<NAME>, beside the app's own; their
    # routes are mounted under /omnistack; they use the app's engine.
    install(app, omnistack_modules(), database=engine, prefix="/omnistack", env_prefix="OMNISTACK_")

    async def database_answers(_app: Starlette) -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    # Beside the modules' checks, so /ready reports them all.
    register_check(app, HealthCheck("database", database_answers))
    return app
