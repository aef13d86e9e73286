"""Migrate the production database: the deployment guide's ``python scripts/migrate_production.py``.

It runs ``omnistack db upgrade``: Alembic to head under a Postgres advisory lock, so any number
of instances may start at once and migrate once. Exit status 1 names the failing revision.
"""

import sys

from omnistack_core.cli import main

if __name__ == "__main__":
    sys.exit(main(["db", "upgrade", *sys.argv[1:]]))
