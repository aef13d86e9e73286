"""The declarative base and the constraint naming convention every table shares."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase

# Named constraints make Alembic autogenerate deterministic and let a migration drop or alter a
# constraint by a name it can know in advance, on Postgres and SQLite alike.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    """A :class:`~sqlalchemy.MetaData` with OmniStack's naming convention, for a module's tables."""
    return MetaData(naming_convention=NAMING_CONVENTION)


class Base(AsyncAttrs, DeclarativeBase):
    """Declarative base for an application's own models."""

    metadata = new_metadata()
