"""The jobs module's transactional outbox.

Revision ID: omnistack_jobs_0001
Revises:
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "omnistack_jobs_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("omnistack_jobs",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_outbox",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("job", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False, comment="JSON: args, kwargs, metadata"),
        sa.Column("job_id", sa.String(length=255), nullable=True),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_outbox")),
    )


def downgrade() -> None:
    op.drop_table("job_outbox")
