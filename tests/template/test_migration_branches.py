"""A generated service's migrations: its own branch beside each module's, on PostgreSQL.

The service's first revision creates only its own table; the modules' tables come from the
branches omnistack-core ships. A revision the service autogenerates passes its own lint.
``copier update`` that adds modules creates their tables and keeps the rows, and a service
generated before the branches existed adopts them, its data intact.
"""

from __future__ import annotations

import ast
import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from sqlalchemy import MetaData

from omnistack_core.ai import ai_metadata
from omnistack_core.auth import auth_metadata
from omnistack_core.billing import billing_metadata
from omnistack_core.email import email_metadata
from omnistack_core.jobs import jobs_metadata
from omnistack_core.testing import create_test_database, drop_test_database
from omnistack_core.testing.pytest_plugin import services_required
from omnistack_core.testing.services import DEFAULT_TEST_POSTGRES_URL
from tests.template.migration_reports import FRESH_DATABASE_REVISIONS, applied_revisions
from tests.template.rendering import (
    ANSWER_SETS,
    GIT_IDENTITY,
    REPOSITORY,
    commit,
    copy_working_tree,
    extract_tree,
    git,
    render,
    snapshot,
)
from tests.template.test_generated_project import UV, attempt, project_environment, run

pytestmark = pytest.mark.integration

COPIER = Path(sys.executable).parent / "copier"
THIS_CHECKOUT = f"@ {REPOSITORY.as_uri()}"
EVERY_MODULE = {**ANSWER_SETS["everything-supabase"], "omnistack_core_version": THIS_CHECKOUT}
BRANCHES = ("service", *(f"omnistack_{m}" for m in ("auth", "jobs", "email", "billing", "ai")))


def table_names(*metadata: MetaData) -> set[str]:
    return {table.name for each in metadata for table in each.tables.values()}


def generate(template: Path, destination: Path, answers: dict[str, Any], vcs_ref: str) -> Path:
    """A service generated at ``vcs_ref``, installed, and committed to a git repository."""
    render(template, destination, answers, vcs_ref=vcs_ref)
    # Rebuilt from the checkout: uv would reuse a wheel built from an older state of it.
    run(destination, UV, "sync", "--quiet", "--reinstall-package", "omnistack-core")
    git(destination, "init", "-q", "-b", "main")
    commit(destination, "generated")
    return destination


@pytest.fixture
def database() -> Iterator[str]:
    server = os.environ.get("OMNISTACK_TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL)
    try:
        url = create_test_database(server)
    except Exception as exc:  # noqa: BLE001 - any reason the server is unusable
        if services_required():
            pytest.fail(f"PostgreSQL is required: {exc}")
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    yield url
    drop_test_database(server, url)


def settings_for(database: str) -> dict[str, str]:
    return {"ENVIRONMENT": "test", "SECRET_KEY": "b" * 40, "DATABASE_URL": database}


def omnistack_db(
    project: Path, database: str, *arguments: str, succeeds: bool = True
) -> subprocess.CompletedProcess[str]:
    """``uv run omnistack db ...`` in the project, against ``database``."""
    command = (UV, "run", "omnistack", "db", *arguments)
    if succeeds:
        return run(project, *command, **settings_for(database))
    return attempt(project, *command, **settings_for(database))


def query(database: str, *statements: str) -> list[list[dict[str, Any]]]:
    """Run ``statements`` in one connection; each one's rows."""

    async def execute() -> list[list[dict[str, Any]]]:
        connection = await asyncpg.connect(database.replace("postgresql+asyncpg", "postgresql"))
        try:
            return [[dict(row) for row in await connection.fetch(sql)] for sql in statements]
        finally:
            await connection.close()

    return asyncio.run(execute())


def tables_in(database: str) -> set[str]:
    (rows,) = query(database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row["tablename"] for row in rows}


def copier_update(project: Path, *options: str) -> None:
    """``copier update`` as a user runs it in the service, with nothing left to resolve."""
    result = subprocess.run(
        [str(COPIER), "update", "--trust", "--defaults", *options],
        cwd=project,
        env=project_environment(**GIT_IDENTITY),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert [path.name for path in project.rglob("*.rej") if ".venv" not in path.parts] == []
    markers = subprocess.run(
        ["git", "grep", "-l", "--untracked", "-e", "^<<<<<<< before updating"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert markers.stdout == "", f"conflicts to resolve in {markers.stdout}"


# Rows of each table, as the service and its modules write them. Only the tables of the
# modules a test's service has are filled.
ROWS = {
    "items": "INSERT INTO items (name) VALUES ('lamp'), ('desk')",
    "users": (
        "INSERT INTO users (id, provider, email) VALUES "
        "('user_1', 'supabase', 'one@example.com'), ('user_2', 'supabase', NULL)"
    ),
    "job_outbox": (
        "INSERT INTO job_outbox (id, job, payload, created_at) VALUES "
        "('0b9c6a1e-7a57-4c1b-9f43-5b8e0f3a6c11', 'item_created', '{\"args\": [1]}', now())"
    ),
    "email_suppressions": (
        "INSERT INTO email_suppressions (address, reason, created_at) "
        "VALUES ('bounced@example.com', 'bounced', now())"
    ),
    "billing_customers": (
        "INSERT INTO billing_customers (user_id, customer_id, email, created_at) "
        "VALUES ('user_1', 'cus_123', 'one@example.com', now())"
    ),
    "ai_usage": (
        "INSERT INTO ai_usage (id, user_id, provider, model, input_tokens, output_tokens, "
        "cached_tokens, cost, created_at) VALUES ('5d1f7c7e-0c44-4b9f-a5a0-3f7d9b2e4a10', "
        "'user_1', 'openai', 'gpt-4o-mini', 12, 34, 0, 0.0001, now())"
    ),
}


def fill(database: str, tables: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Insert rows into ``tables``; everything they then hold, to compare with later."""
    query(database, *(ROWS[table] for table in tables))
    return contents(database, tables)


def contents(database: str, tables: list[str]) -> dict[str, list[dict[str, Any]]]:
    # The table names are this module's own (ROWS), never input.
    selects = [f"SELECT * FROM {table} ORDER BY 1" for table in tables]  # noqa: S608
    rows = query(database, *selects)
    return dict(zip(tables, rows, strict=True))


@pytest.fixture(scope="module")
def every_module_service(tmp_path_factory: pytest.TempPathFactory) -> Path:
    template = snapshot(tmp_path_factory.mktemp("template"))
    destination = tmp_path_factory.mktemp("every-module") / "service"
    return generate(template, destination, EVERY_MODULE, "HEAD")


def created_tables(revision: Path) -> list[str]:
    """The tables a revision file's ``upgrade()`` creates (``op.create_table("name", ...)``)."""
    (upgrade,) = [
        node
        for node in ast.parse(revision.read_text()).body
        if isinstance(node, ast.FunctionDef) and node.name == "upgrade"
    ]
    return [
        str(call.args[0].value)
        for call in ast.walk(upgrade)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "create_table"
        and isinstance(call.args[0], ast.Constant)
    ]


def test_the_first_revision_creates_only_the_services_table_and_upgrade_creates_every_table(
    every_module_service: Path, database: str
) -> None:
    project = every_module_service
    module_tables = table_names(
        auth_metadata, jobs_metadata, email_metadata, billing_metadata, ai_metadata
    )
    assert created_tables(project / "migrations" / "versions" / "0001_initial.py") == ["items"]

    upgraded = omnistack_db(project, database, "upgrade")

    assert applied_revisions(upgraded.stdout) == FRESH_DATABASE_REVISIONS
    assert tables_in(database) == {"alembic_version", "items", *module_tables}
    checked = omnistack_db(project, database, "check")
    assert any(line.startswith("ok: ") for line in checked.stdout.splitlines()), checked.stdout
    current = omnistack_db(project, database, "current").stdout.splitlines()
    listed = {line.split(" ", 1)[0]: line for line in current if line.startswith(BRANCHES)}
    assert set(listed) == set(BRANCHES), current
    for line in listed.values():
        assert line.endswith("pending nothing"), line
        assert "(nothing applied)" not in line, line


MODEL = '''

class Order(Base):
    """An order a user placed."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), ForeignKey(users.c.id), index=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
'''


def test_a_revision_the_service_autogenerates_passes_its_own_lint(
    tmp_path: Path, database: str
) -> None:
    project = generate(snapshot(tmp_path / "template"), tmp_path / "service", EVERY_MODULE, "HEAD")
    omnistack_db(project, database, "upgrade")
    # A model referring to the auth module's users, as the generated README shows it.
    models = project / "app" / "models.py"
    source = models.read_text()
    source = source.replace(
        "from omnistack_core.db import Base\n",
        "from omnistack_core.auth import users\nfrom omnistack_core.db import Base\n",
    ).replace(
        "from sqlalchemy import DateTime, Index, String, func\n",
        "from sqlalchemy import DateTime, ForeignKey, Index, String, func\n",
    )
    models.write_text(source + MODEL)
    before = set((project / "migrations" / "versions").iterdir())

    run(
        project,
        *(UV, "run", "alembic", "revision", "--autogenerate"),
        *("-m", "orders: what each user ordered, by a reference unique across the service"),
        **settings_for(database),
    )

    (revision,) = set((project / "migrations" / "versions").iterdir()) - before
    run(project, UV, "run", "ruff", "check", ".")
    run(project, UV, "run", "ruff", "format", "--check", ".")
    run(project, UV, "run", "mypy")
    written = ast.parse(revision.read_text())
    assignments = {
        node.target.id: ast.literal_eval(node.value)
        for node in written.body
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and node.value is not None
    }
    assert assignments["down_revision"] == "0003_items_owner_id_index"  # the service's branch
    assert assignments["branch_labels"] is None
    assert created_tables(revision) == ["orders"]
    # What the README asks of a revision referring to a module's table; then it migrates.
    text = revision.read_text()
    revision.write_text(
        text.replace(
            "depends_on: str | Sequence[str] | None = None",
            'depends_on: str | Sequence[str] | None = "omnistack_auth_0001"',
        )
    )
    run(project, UV, "run", "ruff", "format", "--check", str(revision))
    omnistack_db(project, database, "lint")
    upgraded = omnistack_db(project, database, "upgrade")
    assert applied_revisions(upgraded.stdout) == {assignments["revision"]}
    assert "orders" in tables_in(database)
    omnistack_db(project, database, "check")


def test_copier_update_adding_modules_creates_their_tables_and_keeps_the_rows(
    tmp_path: Path, database: str
) -> None:
    template = snapshot(tmp_path / "template")
    first = git(template, "rev-parse", "HEAD").strip()
    # A later commit of the template, for the update to move to.
    (template / "template" / "NOTICE.md").write_text("A later commit of the template.\n")
    later = commit(template, "a later template commit")
    answers = {
        "project_name": "Jobs Service",
        "auth_provider": "supabase",
        "modules": ["jobs"],
        "deploy_targets": ["docker"],
        "omnistack_core_version": THIS_CHECKOUT,
    }
    project = generate(template, tmp_path / "service", answers, first)
    omnistack_db(project, database, "upgrade")
    kept = fill(database, ["items", "users", "job_outbox"])

    copier_update(project, "--data", "modules=[jobs, email, billing]")
    run(project, UV, "sync", "--quiet")
    upgraded = omnistack_db(project, database, "upgrade")

    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert later.startswith(recorded["_commit"])
    assert recorded["modules"] == ["jobs", "email", "billing"]
    assert (project / "NOTICE.md").is_file()
    assert applied_revisions(upgraded.stdout) == {
        "omnistack_email_0001",
        "omnistack_email_0002",
        "omnistack_email_0003",
        "omnistack_billing_0001",
        "omnistack_billing_0002",
    }
    assert table_names(email_metadata, billing_metadata) <= tables_in(database)
    assert contents(database, list(kept)) == kept
    omnistack_db(project, database, "check")


def removed_with_the_branches() -> str:
    """The commit before module branches: the parent of the one that removed the template's
    all-tables ``0001_initial.py.jinja``."""
    removal = git(
        REPOSITORY,
        "log",
        "-1",
        "--format=%H",
        "--",
        "template/migrations/versions/0001_initial.py.jinja",
    ).strip()
    assert removal, "this checkout's history does not have the template before module branches"
    return f"{removal}^"


def test_a_service_generated_before_module_branches_adopts_them_with_its_rows(
    tmp_path: Path, database: str
) -> None:
    before_branches = removed_with_the_branches()
    # The template repository: the tree before module branches, then this tree.
    template = tmp_path / "template"
    extract_tree(before_branches, template)
    git(template, "init", "-q", "-b", "main")
    old = commit(template, "before module branches")
    git(template, "rm", "-r", "-q", ".")
    copy_working_tree(template)
    commit(template, "module branches")
    # The service ran the library of its time; the update brings this checkout's.
    library = tmp_path / "library-before-branches"
    extract_tree(before_branches, library)
    answers = {**EVERY_MODULE, "omnistack_core_version": f"@ {library.as_uri()}"}
    project = generate(template, tmp_path / "service", answers, old)
    assert set(created_tables(project / "migrations" / "versions" / "0001_initial.py")) > {
        "items",
        "users",
        "job_outbox",
    }
    omnistack_db(project, database, "upgrade")
    kept = fill(database, list(ROWS))

    copier_update(project, "--data", f"omnistack_core_version={THIS_CHECKOUT}")
    run(project, UV, "sync", "--quiet", "--reinstall-package", "omnistack-core")
    refused = omnistack_db(project, database, "upgrade", succeeds=False)
    adopted = omnistack_db(project, database, "adopt")
    upgraded = omnistack_db(project, database, "upgrade")

    assert refused.returncode == 1
    assert "omnistack db adopt" in refused.stderr, refused.stdout + refused.stderr
    lines = set(adopted.stdout.splitlines())
    for label in BRANCHES[1:]:
        assert f"{label}: adopted ({label}_0001)" in lines, adopted.stdout
    # Since this service's database was made, the update brought the service's revisions
    # that give items their owner and index them by it, and the library the console's
    # indexes and sends table.
    assert applied_revisions(upgraded.stdout) == {
        "0002_items_owner",
        "0003_items_owner_id_index",
        "omnistack_email_0002",
        "omnistack_email_0003",
        "omnistack_billing_0002",
    }
    omnistack_db(project, database, "check")
    # The items made before owners have none (no signed-in user sees them until given one).
    kept["items"] = [{**row, "owner_id": None} for row in kept["items"]]
    assert contents(database, list(kept)) == kept
