"""A jobs module as a later release would ship it: one more revision in its branch.

``NextJobsModule`` reads its branch from ``OMNISTACK_TEST_NEXT_JOBS`` (a folder holding the
released revisions and the new one) and describes the table with the new column.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import MetaData

from omnistack_core.db import new_metadata
from omnistack_core.jobs import JobsModule
from omnistack_core.jobs.outbox import job_outbox
from omnistack_core.migration_branch import MigrationBranch

NEXT_REVISION = '''"""Jobs can be given a priority.

Revision ID: omnistack_jobs_0002
Revises: omnistack_jobs_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "omnistack_jobs_0002"
down_revision = "omnistack_jobs_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job_outbox", sa.Column("priority", sa.Integer(), nullable=True))
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_job_outbox_priority",
            "job_outbox",
            ["priority"],
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_job_outbox_priority", table_name="job_outbox", postgresql_concurrently=True
        )
    op.drop_column("job_outbox", "priority")
'''


def next_metadata() -> MetaData:
    """``job_outbox`` with the column and index the new revision adds."""
    metadata = new_metadata()
    table = job_outbox.to_metadata(metadata)
    table.append_column(sa.Column("priority", sa.Integer(), nullable=True))
    sa.Index("ix_job_outbox_priority", table.c.priority)
    return metadata


class NextJobsModule(JobsModule):
    """The jobs module of the next release."""

    def migrations(self) -> MigrationBranch:
        return MigrationBranch("omnistack_jobs", os.environ["OMNISTACK_TEST_NEXT_JOBS"])

    def metadata(self) -> Sequence[MetaData]:
        return [next_metadata()]


def write_next_release(directory: Path) -> Path:
    """The released revisions of the jobs branch, and the next one, in ``directory``."""
    directory.mkdir(parents=True)
    released = Path(JobsModule().migrations().directory)
    for revision in released.glob("*.py"):
        (directory / revision.name).write_text(revision.read_text())
    (directory / "omnistack_jobs_0002_priority.py").write_text(NEXT_REVISION)
    return directory
