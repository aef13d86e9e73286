"""A service's migrations: its own revisions, and the branches of the modules its app installs.

The service's Alembic environment is derived from the app, never written out a second time:
the modules the app installs say which tables they keep (``Module.metadata()``) and which
revisions create them (``Module.migrations()``). A generated service's ``migrations/env.py``
is one call::

    from omnistack_core.service_migrations import run_service_migrations

    from app.models import Base

    run_service_migrations(Base.metadata, app="app.main:app")

An app with an Alembic environment of its own adds the modules with :func:`include_modules`
in its ``env.py``, and their folders (:func:`version_locations`) to its ``alembic.ini``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnistack_core.errors import ConfigurationError
from omnistack_core.installation import Installation
from omnistack_core.migration_branch import OPTIONS_ATTRIBUTE, MigrationBranch

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from omnistack_core.module import Module


def modules_of_app(spec: str) -> list[Module[Any]]:
    """The modules the app at ``spec`` (``app.main:app``) installs.

    The app is imported as its server would import it; settings it refuses do not matter
    here (a migration needs the database, not the Stripe keys), so the modules are taken
    from the refusal.

    Raises:
        ImportError: ``spec`` cannot be imported.
        AttributeError: It names nothing in its module.
    """
    module_name, _, attribute = spec.partition(":")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        app = getattr(importlib.import_module(module_name), attribute)
    except ConfigurationError as exc:
        return list(exc.modules)
    return list(Installation.of(app).modules)


def branches_of(modules: Sequence[Module[Any]]) -> list[MigrationBranch]:
    """The migration branches of ``modules`` that keep tables."""
    return [branch for module in modules if (branch := module.migrations()) is not None]


def metadata_of(modules: Sequence[Module[Any]]) -> list[MetaData]:
    """The SQLAlchemy metadata of ``modules``' tables."""
    return [metadata for module in modules for metadata in module.metadata()]


def version_locations(modules: Sequence[Module[Any]]) -> list[str]:
    """The folders of ``modules``' revisions, as ``alembic.ini`` lists them.

    A package resource each (``omnistack_core.billing:migrations``), one per line of
    ``version_locations`` with ``path_separator = newline``.
    """
    return [branch.location for branch in branches_of(modules)]


def run_service_migrations(
    metadata: MetaData | Sequence[MetaData],
    *,
    app: str | None = None,
    modules: Sequence[Module[Any]] | None = None,
) -> None:
    """Run Alembic for a service: its own tables, and those of the modules its app installs.

    Call it from ``migrations/env.py``; see
    :func:`~omnistack_core.db.migrations.run_alembic` for how it connects and runs.

    Args:
        metadata: The service's own tables.
        app: The app (``app.main:app``) whose modules are migrated too.
        modules: The modules, when given directly instead of ``app``.
    """
    from omnistack_core.db.migrations import run_alembic  # noqa: PLC0415 - migrations extra

    if modules is not None:
        installed = list(modules)
    else:
        installed = modules_of_app(app) if app is not None else []
    own = list(metadata) if isinstance(metadata, Sequence) else [metadata]
    run_alembic([*own, *metadata_of(installed)], branches=branches_of(installed))


def include_modules(modules: Sequence[Module[Any]]) -> list[MetaData]:
    """Add ``modules``' migrations to an Alembic environment of the app's own.

    Call it in ``env.py`` and add what it returns to ``target_metadata``; list
    :func:`version_locations` in ``alembic.ini``. The modules' revisions then run beside the
    app's (``alembic upgrade heads``), with their options (the auth module's table name).

    Raises:
        MigrationError: ``alembic.ini`` does not list a module's revisions.
    """
    from alembic import context  # noqa: PLC0415 - only exists while Alembic runs env.py

    from omnistack_core.db.migrations import check_locations  # noqa: PLC0415

    branches = branches_of(modules)
    check_locations(context.script, branches)
    context.config.attributes.setdefault(
        OPTIONS_ATTRIBUTE, {branch.label: dict(branch.options) for branch in branches}
    )
    return metadata_of(modules)
