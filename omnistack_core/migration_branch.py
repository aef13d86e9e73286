"""A module's Alembic branch: the revisions that create and change its tables.

Each module that keeps tables ships its revisions inside the package, as a Django app ships
its migrations: one branch per module, labelled ``omnistack_<module>``, whose first revision
creates the tables as they were when the branch began. A released revision is never edited
again; a later release adds revisions to the branch, and ``omnistack db upgrade`` applies
them to every deployed database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

OPTIONS_ATTRIBUTE = "omnistack.branch_options"
"""Where the migration environment hands each branch its options (Alembic config attributes)."""


@dataclass(frozen=True, slots=True)
class MigrationBranch:
    """Where a module's revisions are, and what they need to know of the module.

    Attributes:
        label: The branch label (``omnistack_billing``); ``omnistack_billing@head`` names
            its newest revision.
        location: The revisions' folder as a package resource (``omnistack_core.billing:
            migrations``, the form ``alembic.ini``'s ``version_locations`` accepts), or an
            absolute path.
        options: Values the revisions read with ``branch_options(label)`` (the auth
            module's users table name).
    """

    label: str
    location: str
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        """The folder the revisions are in."""
        if Path(self.location).is_absolute():
            return Path(self.location)
        package, _, folder = self.location.partition(":")
        return Path(str(resources.files(package).joinpath(folder)))
