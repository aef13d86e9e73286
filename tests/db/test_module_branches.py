"""Modules' migration branches, shipped in the package: a release, and a module added later,
migrate a deployed database; a database made before the branches adopts them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

pytest.importorskip("alembic", reason="needs the migrations extra")
pytest.importorskip("asyncpg", reason="needs the postgres extra")
for extra, module in (("auth", "jwt"), ("jobs", "arq"), ("email", "resend")):
    pytest.importorskip(module, reason=f"needs the {extra} extra")
pytest.importorskip("stripe", reason="needs the billing extra")
pytest.importorskip("openai", reason="needs the ai extra")

from omnistack_core.ai import AIModule  # noqa: E402
from omnistack_core.auth import AuthModule  # noqa: E402
from omnistack_core.billing import BillingModule  # noqa: E402
from omnistack_core.cli import main  # noqa: E402
from omnistack_core.db.lint import lint_migrations  # noqa: E402
from omnistack_core.db.migrations import check, downgrade, upgrade  # noqa: E402
from omnistack_core.db.migrations import current as current_state  # noqa: E402
from omnistack_core.email import EmailModule  # noqa: E402
from omnistack_core.jobs import JobsModule  # noqa: E402
from omnistack_core.service_migrations import branches_of  # noqa: E402
from omnistack_core.settings import load_settings  # noqa: E402
from tests.db.migration_project import write_project, write_service_project  # noqa: E402
from tests.db.next_release import NextJobsModule, write_next_release  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[2]
IMPORTS = "\n".join(
    f"from omnistack_core.{package} import {name}"
    for package, name in (
        ("ai", "AIModule"),
        ("auth", "AuthModule"),
        ("billing", "BillingModule"),
        ("email", "EmailModule"),
        ("jobs", "JobsModule"),
    )
)
# Each module branch's revisions, oldest first: what a fresh database gets of the library.
BRANCH_REVISIONS = {
    "omnistack_auth": ("omnistack_auth_0001",),
    "omnistack_jobs": ("omnistack_jobs_0001",),
    "omnistack_email": ("omnistack_email_0001", "omnistack_email_0002", "omnistack_email_0003"),
    "omnistack_billing": ("omnistack_billing_0001", "omnistack_billing_0002"),
    "omnistack_ai": ("omnistack_ai_0001",),
}
LIBRARY_REVISIONS = frozenset(
    revision for revisions in BRANCH_REVISIONS.values() for revision in revisions
)
EVERY_MODULE = "[AuthModule(), JobsModule(), EmailModule(), BillingModule(), AIModule()]"
EVERY_LOCATION = [
    f"omnistack_core.{m}:migrations" for m in ("auth", "jobs", "email", "billing", "ai")
]
MODULE_TABLES = {
    "users",
    "job_outbox",
    "email_suppressions",
    "email_webhook_events",
    "billing_customers",
    "billing_subscriptions",
    "billing_entitlements",
    "billing_events",
    "ai_usage",
}


def alembic(ini: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """The ``alembic`` command, as the deployment guide runs it, on the project at ``ini``."""
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ini), *arguments],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def every_branch() -> list:  # type: ignore[type-arg]
    return branches_of([AuthModule(), JobsModule(), EmailModule(), BillingModule(), AIModule()])


@pytest.fixture
def database(empty_postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", empty_postgres_url)
    return empty_postgres_url


def tables(url: str) -> set[str]:
    async def read() -> set[str]:
        engine = create_async_engine(
            load_settings(database_url=url).database_url.get_secret_value()
        )
        try:
            async with engine.connect() as connection:
                return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(read())


def execute(url: str, *statements: str) -> list[tuple[object, ...]]:
    """Run ``statements`` in one transaction; the last one's rows."""

    async def run() -> list[tuple[object, ...]]:
        engine = create_async_engine(
            load_settings(database_url=url).database_url.get_secret_value()
        )
        try:
            async with engine.begin() as connection:
                result = None
                for statement in statements:
                    result = await connection.execute(text(statement))
                return (
                    [tuple(row) for row in result]
                    if result is not None and result.returns_rows
                    else []
                )
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_a_fresh_database_gets_the_services_tables_and_every_modules(
    tmp_path: Path, database: str
) -> None:
    ini = write_service_project(tmp_path, EVERY_MODULE, IMPORTS, EVERY_LOCATION)
    settings = load_settings(database_url=database)

    result = upgrade(ini, settings=settings, branches=every_branch())
    state = check(ini, settings=settings, branches=every_branch())

    assert tables(database) >= {"items", *MODULE_TABLES}
    assert set(result.applied) == {"0001_items", *LIBRARY_REVISIONS}
    assert state.ok, state
    assert state.by_branch(state.current) == {
        "service": ["0001_items"],
        **{branch: [revisions[-1]] for branch, revisions in BRANCH_REVISIONS.items()},
    }


def test_a_module_added_later_gets_its_tables_and_the_rows_stay(
    tmp_path: Path, database: str
) -> None:
    settings = load_settings(database_url=database)
    jobs_only = [JobsModule()]
    ini = write_service_project(
        tmp_path / "before", "[JobsModule()]", IMPORTS, ["omnistack_core.jobs:migrations"]
    )
    upgrade(ini, settings=settings, branches=branches_of(jobs_only))
    execute(
        database,
        "INSERT INTO items (id) VALUES (1), (2)",
        "INSERT INTO job_outbox (id, job, payload, created_at) VALUES ('j1', 'x', '{}', now())",
    )

    later = write_service_project(
        tmp_path / "after",
        "[JobsModule(), AuthModule(), BillingModule()]",
        IMPORTS,
        [f"omnistack_core.{m}:migrations" for m in ("jobs", "auth", "billing")],
    )
    branches = branches_of([JobsModule(), AuthModule(), BillingModule()])
    result = upgrade(later, settings=settings, branches=branches)

    assert set(result.applied) == {
        *BRANCH_REVISIONS["omnistack_auth"],
        *BRANCH_REVISIONS["omnistack_billing"],
    }
    assert {"users", "billing_customers", "billing_events"} <= tables(database)
    assert execute(database, "SELECT count(*) FROM items") == [(2,)]
    assert execute(database, "SELECT id FROM job_outbox") == [("j1",)]
    assert check(later, settings=settings, branches=branches).ok


def test_a_release_adding_a_revision_to_a_module_branch_keeps_the_rows_and_rolls_back(
    tmp_path: Path, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(database_url=database)
    released = write_service_project(
        tmp_path / "release-n", "[JobsModule()]", IMPORTS, ["omnistack_core.jobs:migrations"]
    )
    upgrade(released, settings=settings, branches=branches_of([JobsModule()]))
    execute(
        database,
        "INSERT INTO job_outbox (id, job, payload, created_at) "
        "SELECT 'j' || n, 'emails.send', '{}', now() FROM generate_series(1, 50) AS n",
    )
    folder = write_next_release(tmp_path / "jobs-next")
    monkeypatch.setenv("OMNISTACK_TEST_NEXT_JOBS", str(folder))
    following = write_service_project(
        tmp_path / "release-n1",
        "[NextJobsModule()]",
        "from tests.db.next_release import NextJobsModule",
        [str(folder)],
    )
    branches = branches_of([NextJobsModule()])

    linted = lint_migrations(following, settings=settings, branches=branches)
    result = upgrade(following, settings=settings, branches=branches)
    state = check(following, settings=settings, branches=branches)
    rows = execute(database, "SELECT count(*), count(priority) FROM job_outbox")
    back = downgrade("omnistack_jobs@-1", following, settings=settings, branches=branches)
    columns = execute(
        database,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'job_outbox'",
    )

    assert linted.revisions == ("omnistack_jobs_0002",)
    assert linted.ok, linted
    assert result.applied == ("omnistack_jobs_0002",)
    assert rows == [(50, 0)]
    assert state.ok, state
    assert back.applied == ("omnistack_jobs_0002",)
    assert "priority" not in {name for (name,) in columns}
    assert execute(database, "SELECT count(*) FROM job_outbox") == [(50,)]


NOTES_ON_USERS = """
revision = "0002_notes"
down_revision = "0001_items"
depends_on = "omnistack_auth_0001"


def upgrade():
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.String(255), sa.ForeignKey("users.id")),
    )


def downgrade():
    op.drop_table("notes")
"""


def test_a_revision_depending_on_a_modules_leaves_that_branch_where_it_is(
    tmp_path: Path, database: str
) -> None:
    ini = write_service_project(
        tmp_path, "[AuthModule()]", IMPORTS, ["omnistack_core.auth:migrations"]
    )
    (tmp_path / "migrations" / "versions" / "0002_notes.py").write_text(
        "import sqlalchemy as sa\nfrom alembic import op\n" + NOTES_ON_USERS
    )
    settings = load_settings(database_url=database)
    branches = branches_of([AuthModule()])

    result = upgrade(ini, settings=settings, revision="0002_notes", branches=branches)
    state = current_state(ini, settings=settings, branches=branches)

    # The users table first: the notes' foreign key needs it.
    assert result.applied == ("omnistack_auth_0001", "0001_items", "0002_notes")
    assert state.current == ("0002_notes",)  # Alembic keeps no row for the dependency
    assert dict(state.at) == {
        "service": ("0002_notes",),
        "omnistack_auth": ("omnistack_auth_0001",),
    }
    assert state.pending == ()


def test_alembic_upgrade_head_applies_every_branch(tmp_path: Path, database: str) -> None:
    ini = write_service_project(tmp_path, EVERY_MODULE, IMPORTS, EVERY_LOCATION)

    result = alembic(ini, "upgrade", "head")

    assert result.returncode == 0, result.stderr
    assert tables(database) >= {"items", *MODULE_TABLES}


def test_downgrade_minus_one_steps_back_the_services_own_branch(
    tmp_path: Path, database: str
) -> None:
    ini = write_service_project(tmp_path, EVERY_MODULE, IMPORTS, EVERY_LOCATION)
    settings = load_settings(database_url=database)
    upgrade(ini, settings=settings, branches=every_branch())

    by_alembic = alembic(ini, "downgrade", "-1")
    after_alembic = tables(database)
    upgrade(ini, settings=settings, branches=every_branch())
    ours = downgrade("-1", ini, settings=settings, branches=every_branch())

    assert by_alembic.returncode == 0, by_alembic.stderr
    assert "ambiguous" not in by_alembic.stderr
    assert "items" not in after_alembic
    assert after_alembic >= MODULE_TABLES
    assert ours.applied == ("0001_items",)
    assert tables(database) >= MODULE_TABLES


def test_an_alembic_ini_without_a_modules_folder_is_refused_naming_it(
    tmp_path: Path, database: str
) -> None:
    ini = write_service_project(
        tmp_path, "[JobsModule(), AuthModule()]", IMPORTS, ["omnistack_core.jobs:migrations"]
    )

    result = alembic(ini, "upgrade", "heads")

    assert result.returncode != 0
    assert "lacks the revisions of omnistack_auth: add omnistack_core.auth:migrations" in (
        result.stderr
    )


OLD_INITIAL = """
revision = "0001_initial"
down_revision = None


def upgrade():
    op.create_table("items", sa.Column("id", sa.Integer, primary_key=True))
    op.create_table(
        "users",
        sa.Column("id", sa.String(255), nullable=False, comment="The issuer's user id (sub)"),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "last_seen_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_table(
        "job_outbox",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("job", sa.String(200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False, comment="JSON: args, kwargs, metadata"),
        sa.Column("job_id", sa.String(255), nullable=True),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_outbox")),
    )


def downgrade():
    op.drop_table("job_outbox")
    op.drop_table("users")
    op.drop_table("items")
"""
"""The first revision a service was generated with before the modules had branches."""

NEW_INITIAL = """
revision = "0001_initial"
down_revision = None


def upgrade():
    op.create_table("items", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("items")
"""
"""The same revision as the template has it now: the modules' tables left to their branches."""


def old_service(directory: Path, database: str) -> Path:
    """A service as generated before the branches, migrated, with rows; then updated."""
    ini = write_project(directory, {"0001_initial.py": OLD_INITIAL})
    upgrade(ini, settings=load_settings(database_url=database))
    execute(
        database,
        "INSERT INTO items (id) VALUES (7)",
        "INSERT INTO users (id, provider, email) VALUES ('u1', 'supabase', 'ada@example.com')",
    )
    # What `copier update` does to it: the first revision keeps only the service's table,
    # alembic.ini lists the modules' branches, env.py migrates the app's modules.
    (directory / "migrations" / "versions" / "0001_initial.py").write_text(
        "import sqlalchemy as sa\nfrom alembic import op\n" + NEW_INITIAL
    )
    app = f"svc_{uuid.uuid4().hex[:8]}"
    (directory / f"{app}.py").write_text(
        "from omnistack_core import create_app\n"
        "from omnistack_core.auth import AuthModule\n"
        "from omnistack_core.jobs import JobsModule\n\n"
        "app = create_app(modules=[AuthModule(), JobsModule()])\n"
    )
    (directory / "migrations" / "env.py").write_text(
        "import sqlalchemy as sa\n\n"
        "from omnistack_core.service_migrations import run_service_migrations\n\n"
        "metadata = sa.MetaData()\n"
        'sa.Table("items", metadata, sa.Column("id", sa.Integer, primary_key=True))\n'
        f'run_service_migrations(metadata, app="{app}:app")\n'
    )
    ini.write_text(
        "[alembic]\nscript_location = %(here)s/migrations\npath_separator = newline\n"
        "version_locations =\n    %(here)s/migrations/versions\n"
        "    omnistack_core.auth:migrations\n    omnistack_core.jobs:migrations\n"
    )
    (directory / "pyproject.toml").write_text(f'[tool.omnistack]\napp = "{app}:app"\n')
    return ini


def report_lines(output: str) -> list[str]:
    """The command's own lines, without the log lines the app's logging writes beside them."""
    return [line for line in output.splitlines() if line.startswith(("omnistack_", "  - "))]


def test_an_old_service_adopts_the_branches_its_data_intact(
    isolated_environment: Path, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ini = old_service(isolated_environment, database)

    refused = main(["db", "upgrade", "--config", str(ini)])
    hint = capsys.readouterr().err
    adopted = main(["db", "adopt", "--config", str(ini)])
    adoption = report_lines(capsys.readouterr().out)
    upgraded = main(["db", "upgrade", "--config", str(ini)])
    checked = main(["db", "check", "--config", str(ini)])

    assert refused == 1
    assert "run `omnistack db adopt` first" in hint
    assert adopted == 0
    assert adoption == [
        "omnistack_auth: adopted (omnistack_auth_0001)",
        "omnistack_jobs: adopted (omnistack_jobs_0001)",
    ]
    assert (upgraded, checked) == (0, 0)
    assert "applied: nothing" in capsys.readouterr().out
    assert execute(database, "SELECT id, email FROM users") == [("u1", "ada@example.com")]
    assert execute(database, "SELECT id FROM items") == [(7,)]


def test_adopt_refuses_tables_that_differ_and_says_how(
    isolated_environment: Path, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ini = old_service(isolated_environment, database)
    execute(
        database,
        "ALTER TABLE users DROP COLUMN email",
        "ALTER TABLE users ADD COLUMN nickname varchar(40)",
    )

    status = main(["db", "adopt", "--config", str(ini)])

    output = report_lines(capsys.readouterr().out)
    assert status == 1
    assert output[0] == "omnistack_auth: refused (omnistack_auth_0001)"
    assert "  - users: column email is missing" in output
    assert "  - users: column nickname is not the revision's" in output
    assert "omnistack_jobs: adopted (omnistack_jobs_0001)" in output
    versions = {row[0] for row in execute(database, "SELECT version_num FROM alembic_version")}
    assert versions == {"0001_initial", "omnistack_jobs_0001"}


def test_the_librarys_revisions_lint_clean(tmp_path: Path) -> None:
    ini = write_service_project(tmp_path, EVERY_MODULE, IMPORTS, EVERY_LOCATION)

    report = lint_migrations(ini, since="base", branches=every_branch())

    assert report.ok, report
    assert set(report.revisions) == {"0001_items", *LIBRARY_REVISIONS}


def released_revisions(tag: str) -> dict[str, str]:
    listed = subprocess.run(
        ["git", "-C", str(REPOSITORY), "ls-tree", "-r", "--name-only", tag, "omnistack_core"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {
        name: subprocess.run(
            ["git", "-C", str(REPOSITORY), "show", f"{tag}:{name}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for name in listed
        if "/migrations/" in name and name.endswith(".py")
    }


def test_a_released_revision_is_never_edited() -> None:
    """Every module revision of the last release tag is in this tree, unchanged.

    Releases are tagged ``v*``; before the first one there is nothing released to compare.
    """
    tags = subprocess.run(
        ["git", "-C", str(REPOSITORY), "tag", "--list", "v*", "--sort=-v:refname"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    released = released_revisions(tags[0]) if tags else {}

    changed = [
        name
        for name, content in released.items()
        if not (REPOSITORY / name).is_file() or (REPOSITORY / name).read_text() != content
    ]

    assert not changed, f"released revisions edited or removed since {tags[0]}: {changed}"
