"""Alembic environment: the service's own tables, and the tables of the modules its app installs.

The modules' revisions come with omnistack-core (a branch per module, listed in alembic.ini's
version_locations); which modules, and their tables, are read from the app itself.
"""

from omnistack_core.service_migrations import run_service_migrations

from app.models import Base

run_service_migrations(Base.metadata, app="app.main:app")
