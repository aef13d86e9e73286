"""The migrations follow the deployment guide: one line of revisions per branch (the
service's, and each module's that omnistack-core ships), each one reversible, safe to run
while the previous release serves, and matching the models."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from omnistack_core.testing import create_test_database, drop_test_database
from omnistack_core.testing.migrations import (
    assert_migrations_lint_clean,
    assert_models_match_migrations,
    assert_one_head_per_branch,
    assert_revisions_round_trip,
)


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    """An empty database of the kind DATABASE_URL names: PostgreSQL in CI, else SQLite."""
    server = os.environ["DATABASE_URL"]
    if not server.startswith("postgres"):
        yield f"sqlite+aiosqlite:///{tmp_path}/empty.db"
        return
    url = create_test_database(server)
    yield url
    drop_test_database(server, url)


def test_each_branch_has_one_head() -> None:
    assert_one_head_per_branch()


def test_no_revision_locks_tables_or_breaks_the_running_release() -> None:
    # Same rules as `omnistack db lint`; a reviewed exception is a comment in the revision:
    # `# omnistack-lint: allow <rule> -- why it is safe here`.
    assert_migrations_lint_clean()


def test_every_revision_upgrades_downgrades_and_upgrades_again(empty_database_url: str) -> None:
    assert_revisions_round_trip(empty_database_url)


def test_the_models_match_the_migrations(empty_database_url: str) -> None:
    assert_models_match_migrations(empty_database_url)
