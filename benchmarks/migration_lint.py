"""How long `omnistack db lint` takes on 200 revisions (aim: under 5 s).

Writes a project of 200 revisions (tables, nullable columns, concurrent indexes, NOT VALID
constraints, raw SQL), then times, each in a fresh process as a user runs them:

- ``omnistack db lint --since base``: the linter over every revision;
- ``alembic upgrade heads --sql``: Alembic writing the same SQL offline, with no linting:
  the floor the linter builds on.

Prints the median of the runs and the ratio. Needs no database.

    uv run python benchmarks/migration_lint.py [--revisions 200] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = """
import sqlalchemy as sa

from omnistack_core.db.migrations import run_alembic

run_alembic(sa.MetaData())
"""

# Five shapes of revision, cycled; table t{n} is created by the first revision of its cycle.
SHAPES = [
    """
    op.create_table(
        "t{table}",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
    )
    op.create_index("ix_t{table}_name", "t{table}", ["name"])
    """,
    """
    op.add_column("t{table}", sa.Column("note", sa.Text))
    op.add_column("t{table}", sa.Column("kind", sa.Text, nullable=False, server_default="a"))
    """,
    """
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_t{table}_note", "t{table}", ["note"], postgresql_concurrently=True
        )
    """,
    """
    op.create_check_constraint(
        "ck_t{table}_kind", "t{table}", "kind <> ''", postgresql_not_valid=True
    )
    with op.get_context().autocommit_block():
        op.execute("ALTER TABLE t{table} VALIDATE CONSTRAINT ck_t{table}_kind")
    """,
    """
    op.execute("UPDATE t{table} SET note = name WHERE note IS NULL")
    op.execute("COMMENT ON TABLE t{table} IS 'revision {number}'")
    """,
]


def write_project(directory: Path, count: int) -> Path:
    versions = directory / "migrations" / "versions"
    versions.mkdir(parents=True)
    (directory / "alembic.ini").write_text(
        "[alembic]\nscript_location = %(here)s/migrations\npath_separator = os\n"
    )
    (directory / "migrations" / "env.py").write_text(ENV)
    previous = None
    for number in range(count):
        table = number // len(SHAPES)
        body = SHAPES[number % len(SHAPES)].format(table=table, number=number)
        name = f"r{number:04d}"
        lines = "\n".join(f"    {line[4:]}" if line else "" for line in body.splitlines())
        (versions / f"{name}.py").write_text(
            "import sqlalchemy as sa\nfrom alembic import op\n\n"
            f'revision = "{name}"\ndown_revision = {previous!r}\n\n\n'
            f"def upgrade():{lines}\n\n\n"
            f'def downgrade():\n    op.execute("SELECT 1")\n'
        )
        previous = name
    return directory / "alembic.ini"


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    finished = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if finished.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed:\n{finished.stderr}")
    return elapsed, finished.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    arguments = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        write_project(project, arguments.revisions)
        lint = [str(bin_dir / "omnistack"), "db", "lint", "--since", "base"]
        offline = [str(bin_dir / "alembic"), "upgrade", "heads", "--sql"]
        lint_times, offline_times = [], []
        summary = ""
        for _ in range(arguments.runs):
            elapsed, summary = timed(lint, project)
            lint_times.append(elapsed)
            offline_times.append(timed(offline, project)[0])
    lint_median = statistics.median(lint_times)
    offline_median = statistics.median(offline_times)
    print(f"{arguments.revisions} revisions, median of {arguments.runs} fresh processes")
    print(f"  linter says: {summary.strip().splitlines()[-1]}")
    print(f"  omnistack db lint --since base   {lint_median:6.2f} s   (aim: under 5 s)")
    print(f"  alembic upgrade heads --sql      {offline_median:6.2f} s   (the SQL alone)")
    print(f"  ratio                            {lint_median / offline_median:6.2f}x")


if __name__ == "__main__":
    main()
