"""Alembic's environment: the app's revisions and its modules' branches, at its DATABASE_URL."""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from examples.existing_app.models import Base
from examples.existing_app.omnistack import omnistack_modules
from examples.existing_app.settings import AppSettings
from omnistack_core.service_migrations import include_modules

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# The modules' revisions (alembic.ini's version_locations) create their tables, the auth
# module's users under the name the app gave them; their metadata lets autogenerate and
# `alembic check` compare those tables too.
target_metadata = [Base.metadata, *include_modules(omnistack_modules())]
database_url = AppSettings().database_url


def run_migrations(connection: Connection) -> None:
    """Run the pending revisions on ``connection``, each in its own transaction."""
    context.configure(
        connection=connection, target_metadata=target_metadata, transaction_per_migration=True
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    """Connect with the app's async driver and migrate."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=database_url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_online())
