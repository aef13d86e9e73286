"""A generated project over time: template updates, and deploys racing to migrate."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import copier
import pytest

from omnistack_core.db.migrations import MIGRATION_LOCK_KEY
from omnistack_core.testing import create_test_database, drop_test_database, wait_until
from omnistack_core.testing.pytest_plugin import services_required
from omnistack_core.testing.services import DEFAULT_TEST_POSTGRES_URL
from tests.template.rendering import ANSWER_SETS, REPOSITORY, git, render, snapshot
from tests.template.test_generated_project import UV, project_environment, run

pytestmark = pytest.mark.integration

COMMIT = ("-c", "user.name=tests", "-c", "user.email=tests@example.com", "commit", "-q")


def release(template: Path, tag: str, message: str) -> None:
    git(template, "add", "-A")
    git(template, *COMMIT, "--allow-empty", "-m", message)
    git(template, "tag", tag)


@pytest.fixture
def versioned_template(tmp_path: Path) -> Path:
    """The template at an older release (v0.1.0) and at this tree (v0.2.0)."""
    template = snapshot(tmp_path / "template")
    current = {
        path: path.read_bytes() for path in (template / "template").rglob("*") if path.is_file()
    }
    # The older release: no pre-commit config yet, and an older README.
    (template / "template" / ".pre-commit-config.yaml").unlink()
    readme = template / "template" / "README.md.jinja"
    readme.write_text(readme.read_text().replace("## Test it", "## Testing"))
    release(template, "v0.1.0", "older release")
    for path, content in current.items():
        path.write_bytes(content)
    release(template, "v0.2.0", "this tree")
    return template


def test_copier_update_from_an_older_release_applies_cleanly(
    versioned_template: Path, tmp_path: Path
) -> None:
    answers = ANSWER_SETS["everything-supabase"]
    project = tmp_path / "project"
    copier.run_copy(
        str(versioned_template),
        str(project),
        data=answers,
        defaults=True,
        unsafe=True,
        vcs_ref="v0.1.0",
        quiet=True,
    )
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, *COMMIT, "-m", "generated from v0.1.0")
    assert not (project / ".pre-commit-config.yaml").exists()

    copier.run_update(
        str(project), defaults=True, unsafe=True, vcs_ref="v0.2.0", overwrite=True, quiet=True
    )

    fresh = render(versioned_template, tmp_path / "fresh", answers)
    assert (project / ".pre-commit-config.yaml").read_text() == (
        fresh / ".pre-commit-config.yaml"
    ).read_text()
    assert (project / "README.md").read_text() == (fresh / "README.md").read_text()
    assert "_commit: v0.2.0" in (project / ".copier-answers.yml").read_text()
    leftovers = [p.name for p in project.rglob("*.rej")]
    assert leftovers == []
    status = git(project, "status", "--porcelain")
    assert "UU " not in status  # no merge conflicts
    env_before = (project / ".env").read_text()
    assert "SECRET_KEY=" in env_before  # the update kept the secrets file untouched


@pytest.fixture
def migrating_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    template = snapshot(tmp_path_factory.mktemp("template"))
    answers = {
        **ANSWER_SETS["no-auth-no-modules"],
        "omnistack_core_version": f"@ {REPOSITORY.as_uri()}",
    }
    project = render(template, tmp_path_factory.mktemp("race") / "service", answers)
    run(project, UV, "sync", "--quiet", "--reinstall-package", "omnistack-core")
    return project


@pytest.fixture
def empty_database() -> Iterator[str]:
    server = os.environ.get("OMNISTACK_TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL)
    try:
        url = create_test_database(server)
    except Exception as exc:  # noqa: BLE001 - any reason the server is unusable
        if services_required():
            pytest.fail(f"PostgreSQL is required: {exc}")
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    yield url
    drop_test_database(server, url)


OTHER_SESSIONS = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def test_two_deploys_migrating_at_once_migrate_once(
    migrating_project: Path, empty_database: str
) -> None:
    env = project_environment(
        ENVIRONMENT="production", SECRET_KEY="r" * 40, DATABASE_URL=empty_database
    )
    command = [UV, "run", "python", "scripts/migrate_production.py"]
    loop = asyncio.new_event_loop()
    holder = loop.run_until_complete(
        asyncpg.connect(empty_database.replace("postgresql+asyncpg://", "postgresql://"))
    )
    # Hold the lock ourselves, so that both runners are surely waiting on it at once.
    loop.run_until_complete(holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY))
    try:
        runners = [
            subprocess.Popen(
                command,
                cwd=migrating_project,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]

        # Running is not waiting: on a loaded machine `uv run` may take seconds to start. Wait
        # until both runners are connected (they poll the lock from then on), then long
        # enough that each reports having waited.
        def connected() -> bool:
            assert [runner.poll() for runner in runners] == [None, None]
            return loop.run_until_complete(holder.fetchval(OTHER_SESSIONS)) >= 2

        wait_until(connected, timeout=60, interval=0.2, message="the runners never connected")
        time.sleep(1.5)  # a runner reports its wait for the lock only from 1 s on
        assert [runner.poll() for runner in runners] == [None, None]  # both waiting
        migrated = loop.run_until_complete(
            holder.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
        )
        assert migrated is False
    finally:
        loop.run_until_complete(holder.execute("SELECT pg_advisory_unlock_all()"))
        loop.run_until_complete(holder.close())
        loop.close()
    outputs = [runner.communicate(timeout=120)[0] for runner in runners]

    assert [runner.returncode for runner in runners] == [0, 0], outputs
    applied = sorted(
        line for output in outputs for line in output.splitlines() if "applied:" in line
    )
    assert applied == [
        "applied: 0001_initial, 0002_items_owner, 0003_items_owner_id_index",
        "applied: nothing, the database was up to date",
    ]
    assert all("after:   0003_items_owner_id_index" in output for output in outputs)
    assert all("for another runner's migration lock" in output for output in outputs)
