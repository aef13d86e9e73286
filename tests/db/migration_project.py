"""Small Alembic projects written into a test's directory."""

from __future__ import annotations

import textwrap
from pathlib import Path

PLAIN_ENV = """
from omnistack_core.db import new_metadata
from omnistack_core.db.migrations import run_alembic

run_alembic(new_metadata())
"""


def write_project(directory: Path, revisions: dict[str, str], env: str = PLAIN_ENV) -> Path:
    """Write alembic.ini, migrations/env.py and the revisions; return the ini's path.

    Each revision body gets ``import sqlalchemy as sa`` and ``from alembic import op`` on
    top, so its line N is line N + 2 of the file.
    """
    (directory / "migrations" / "versions").mkdir(parents=True)
    (directory / "alembic.ini").write_text(
        "[alembic]\nscript_location = %(here)s/migrations\npath_separator = os\n"
    )
    (directory / "migrations" / "env.py").write_text(textwrap.dedent(env).lstrip())
    for name, body in revisions.items():
        source = "import sqlalchemy as sa\nfrom alembic import op\n" + textwrap.dedent(body)
        (directory / "migrations" / "versions" / name).write_text(source)
    return directory / "alembic.ini"


ITEMS = """
revision = "0001_items"
down_revision = None


def upgrade():
    op.create_table("items", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("items")
"""

SERVICE_ENV = """
import sqlalchemy as sa

from omnistack_core.service_migrations import run_service_migrations
{imports}

metadata = sa.MetaData()
sa.Table("items", metadata, sa.Column("id", sa.Integer, primary_key=True))
run_service_migrations(metadata, modules={modules})
"""


def write_service_project(
    directory: Path, modules: str, imports: str, locations: list[str]
) -> Path:
    """A service's Alembic project: its items, and the branches of ``modules`` (an expression).

    ``alembic.ini`` lists ``locations`` beside the service's own folder, as a generated
    service's does for its modules.
    """
    ini = write_project(
        directory, {"0001_items.py": ITEMS}, SERVICE_ENV.format(imports=imports, modules=modules)
    )
    listed = "\n    ".join(["%(here)s/migrations/versions", *locations])
    ini.write_text(
        "[alembic]\nscript_location = %(here)s/migrations\npath_separator = newline\n"
        f"version_locations =\n    {listed}\n"
    )
    return ini
