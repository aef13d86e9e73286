"""db current, db check and db downgrade, and the test helpers, on real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("alembic", reason="needs the migrations extra")

from omnistack_core import load_settings
from omnistack_core.cli import main
from omnistack_core.db.migrations import MigrationError, check, current, downgrade, upgrade
from omnistack_core.testing.migrations import (
    assert_migrations_lint_clean,
    assert_models_match_migrations,
    assert_one_head_per_branch,
    assert_revisions_round_trip,
)
from tests.db.migration_project import write_project

NOTES = """
revision = "0001_notes"
down_revision = None


def upgrade():
    op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("notes")
"""
TAGS = """
revision = "0002_tags"
down_revision = "0001_notes"


def upgrade():
    op.create_table("tags", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("tags")
"""
# Its downgrade fails: a revision that cannot be rolled back.
STUCK = """
revision = "0003_stuck"
down_revision = "0002_tags"


def upgrade():
    op.create_table("stuck", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("stuck")
    op.execute("THIS IS NOT SQL")
"""
MODELS_ENV = """
import sqlalchemy as sa

from omnistack_core.db.migrations import run_alembic

metadata = sa.MetaData()
sa.Table("notes", metadata, sa.Column("id", sa.Integer, primary_key=True))
sa.Table("tags", metadata, sa.Column("id", sa.Integer, primary_key=True))
run_alembic(metadata)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path, {"0001_notes.py": NOTES, "0002_tags.py": TAGS}, MODELS_ENV)


@pytest.fixture
def database(empty_postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", empty_postgres_url)
    return empty_postgres_url


def test_current_shows_where_the_database_is_and_what_is_pending(
    project: Path, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(database_url=database)
    upgrade(project, revision="0001_notes", settings=settings)

    state = current(project, settings=settings)
    status = main(["db", "current", "--config", str(project)])

    assert (state.current, state.heads, state.pending) == (
        ("0001_notes",),
        ("0002_tags",),
        ("0002_tags",),
    )
    assert status == 0
    assert capsys.readouterr().out == (
        "service  at 0001_notes; head 0002_tags; pending 0002_tags\n"
    )


def test_check_fails_while_revisions_are_pending_then_passes(
    project: Path, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pending = main(["db", "check", "--config", str(project)])
    pending_err = capsys.readouterr().err
    upgrade(project, settings=load_settings(database_url=database))
    clean = main(["db", "check", "--config", str(project)])

    assert pending == 1
    assert "pending revisions of service, not applied: 0001_notes, 0002_tags" in pending_err
    assert clean == 0
    assert "ok: service at 0002_tags; every branch at its head" in capsys.readouterr().out


def test_check_fails_when_the_models_have_a_change_without_a_revision(
    tmp_path: Path, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = MODELS_ENV.replace(
        'sa.Table("tags", metadata, sa.Column("id", sa.Integer, primary_key=True))',
        'sa.Table("tags", metadata, sa.Column("id", sa.Integer, primary_key=True),'
        ' sa.Column("label", sa.Text))',
    )
    config = write_project(tmp_path, {"0001_notes.py": NOTES, "0002_tags.py": TAGS}, env)
    settings = load_settings(database_url=database)
    upgrade(config, settings=settings)

    state = check(config, settings=settings)
    status = main(["db", "check", "--config", str(config)])

    assert not state.ok
    assert len(state.drift) == 1
    assert "add_column" in state.drift[0]
    assert "label" in state.drift[0]
    assert status == 1
    assert "models differ from the migrations" in capsys.readouterr().err
    with pytest.raises(AssertionError, match="label"):
        assert_models_match_migrations(database, config)


def test_check_and_the_helper_refuse_two_heads(
    tmp_path: Path, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    branch = TAGS.replace("0002_tags", "0002_other").replace('"tags"', '"other"')
    config = write_project(
        tmp_path, {"0001_notes.py": NOTES, "0002_tags.py": TAGS, "0002_other.py": branch}
    )
    upgrade(config, settings=load_settings(database_url=database))

    status = main(["db", "check", "--config", str(config)])

    assert status == 1
    errors = capsys.readouterr().err
    assert "the service branch has several heads" in errors
    assert "0002_tags" in errors
    assert "0002_other" in errors
    with pytest.raises(AssertionError, match="the service branch has 2 heads"):
        assert_one_head_per_branch(config)


def test_downgrade_takes_the_lock_and_reports_what_it_undid(
    project: Path, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(database_url=database)
    upgrade(project, settings=settings)

    one_step = downgrade("-1", project, settings=settings)
    status = main(["db", "downgrade", "base", "--config", str(project)])

    assert (one_step.before, one_step.after, one_step.applied) == (
        "0002_tags",
        "0001_notes",
        ("0002_tags",),
    )
    assert status == 0
    output = capsys.readouterr().out
    assert "downgraded: 0001_notes" in output
    assert "after:      (empty database)" in output


def test_a_failing_downgrade_stays_at_its_revision_and_names_it(
    tmp_path: Path, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_project(
        tmp_path, {"0001_notes.py": NOTES, "0002_tags.py": TAGS, "0003_stuck.py": STUCK}
    )
    settings = load_settings(database_url=database)
    upgrade(config, settings=settings)

    with pytest.raises(MigrationError, match="migration 0003_stuck failed") as caught:
        downgrade("base", config, settings=settings)
    status = main(["db", "downgrade", "base", "--config", str(config)])

    assert caught.value.revision == "0003_stuck"
    assert status == 1
    assert "error: migration 0003_stuck failed" in capsys.readouterr().err
    # Its transaction rolled back whole: the stuck table is still there, and so is the rest.
    assert current(config, settings=settings).current == ("0003_stuck",)


def test_a_failing_upgrade_exits_1_and_leaves_the_last_good_revision(
    tmp_path: Path, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = STUCK.replace("0003_stuck", "0003_broken").replace(
        'op.create_table("stuck", sa.Column("id", sa.Integer, primary_key=True))',
        'op.create_table("stuck", sa.Column("id", sa.Integer, primary_key=True))\n'
        '    op.execute("ALSO NOT SQL")',
    )
    config = write_project(
        tmp_path, {"0001_notes.py": NOTES, "0002_tags.py": TAGS, "0003_broken.py": broken}
    )

    status = main(["db", "upgrade", "--config", str(config)])
    main(["db", "current", "--config", str(config)])

    assert status == 1
    captured = capsys.readouterr()
    assert "error: migration 0003_broken failed" in captured.err
    assert "service  at 0002_tags; head 0003_broken; pending 0003_broken" in captured.out


def test_the_round_trip_helper_names_a_revision_that_cannot_go_back(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    config = write_project(
        tmp_path, {"0001_notes.py": NOTES, "0002_tags.py": TAGS, "0003_stuck.py": STUCK}
    )

    with pytest.raises(AssertionError, match="0003_stuck: downgrade failed"):
        assert_revisions_round_trip(empty_postgres_url, config)


def test_the_helpers_pass_a_sound_project(project: Path, empty_postgres_url: str) -> None:
    assert assert_one_head_per_branch(project) == {"service": "0002_tags"}
    assert assert_revisions_round_trip(empty_postgres_url, project) == ["0001_notes", "0002_tags"]
    assert_models_match_migrations(empty_postgres_url, project)
    assert assert_migrations_lint_clean(project).ok


def test_the_lint_helper_fails_with_the_report(tmp_path: Path) -> None:
    unsafe = TAGS.replace(
        'op.create_table("tags", sa.Column("id", sa.Integer, primary_key=True))',
        'op.create_index("ix_notes_id", "notes", ["id"])',
    )
    config = write_project(tmp_path, {"0001_notes.py": NOTES, "0002_tags.py": unsafe})

    with pytest.raises(AssertionError, match="index-not-concurrent"):
        assert_migrations_lint_clean(config)


def test_a_rollback_leaves_a_database_a_newer_release_migrated(
    tmp_path: Path, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    newer = write_project(tmp_path / "newer", {"0001_notes.py": NOTES, "0002_tags.py": TAGS})
    older = write_project(tmp_path / "older", {"0001_notes.py": NOTES})
    settings = load_settings(database_url=database)
    upgrade(newer, settings=settings)

    result = upgrade(older, settings=settings)
    upgraded = main(["db", "upgrade", "--config", str(older)])
    upgrade_out = capsys.readouterr().out
    state = current(older, settings=settings)
    checked = main(["db", "check", "--config", str(older)])
    check_err = capsys.readouterr().err

    assert (result.before, result.after, result.applied, result.ahead) == (
        "0002_tags",
        "0002_tags",
        (),
        True,
    )
    assert upgraded == 0
    assert "newer than this release's migrations: left as it is" in upgrade_out
    assert (state.current, state.unknown, state.pending) == (("0002_tags",), ("0002_tags",), ())
    assert checked == 1
    assert "which these migrations do not have" in check_err
    with pytest.raises(MigrationError, match="downgrade with the release that applied it"):
        downgrade("base", older, settings=settings)
