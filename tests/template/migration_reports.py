"""What a generated service's ``omnistack db upgrade`` reports, read back for assertions."""

from __future__ import annotations

UP_TO_DATE = "applied: nothing, the database was up to date"

FRESH_DATABASE_REVISIONS = frozenset(
    {
        "0001_initial",
        "0002_items_owner",
        "0003_items_owner_id_index",
        "omnistack_auth_0001",
        "omnistack_jobs_0001",
        "omnistack_email_0001",
        "omnistack_email_0002",
        "omnistack_email_0003",
        "omnistack_billing_0001",
        "omnistack_billing_0002",
        "omnistack_ai_0001",
    }
)
"""What a fresh database of a service with auth and every module gets: every revision of the
service's branch and of each module branch."""


def applied_revisions(output: str) -> frozenset[str]:
    """The revisions an ``omnistack db upgrade`` report says it applied (none when up to date).

    The order is Alembic's walk through the branches, which no one relies on: a set.
    """
    (line,) = [line for line in output.splitlines() if line.startswith("applied: ")]
    if line == UP_TO_DATE:
        return frozenset()
    return frozenset(line.removeprefix("applied: ").split(", "))
