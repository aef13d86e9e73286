"""Database: async engine from settings, sessions, the declarative base.

Importing this package imports SQLAlchemy; ``omnistack_core`` itself does so only at start-up.
"""

from omnistack_core.db.base import NAMING_CONVENTION, Base, new_metadata
from omnistack_core.db.engine import engine_from_settings
from omnistack_core.db.session import (
    Database,
    DbReadSession,
    DbSession,
    get_read_session,
    get_session,
)

__all__ = [
    "NAMING_CONVENTION",
    "Base",
    "Database",
    "DbReadSession",
    "DbSession",
    "engine_from_settings",
    "get_read_session",
    "get_session",
    "new_metadata",
]
