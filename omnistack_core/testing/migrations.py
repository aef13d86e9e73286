"""Checks that hold a service's migrations to the deployment guide, for its own test suite.

Each raises ``AssertionError`` with what to fix, so a test is one call::

    from omnistack_core.testing.migrations import assert_single_head

    def test_one_head() -> None:
        assert_single_head()

Run the database checks on an empty database (the ``empty_postgres_url`` fixture). Needs the
``migrations`` extra.
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from omnistack_core.db.lint import LintReport, lint_migrations, render_text
from omnistack_core.db.migrations import MigrationError, check, downgrade, upgrade
from omnistack_core.settings import load_settings


def assert_single_head(config_path: str | Path = "alembic.ini") -> str:
    """The revisions form one line: two heads mean two branches that nobody merged.

    Returns:
        The head.
    """
    heads = ScriptDirectory.from_config(Config(str(config_path))).get_heads()
    if len(heads) != 1:
        raise AssertionError(
            f"{len(heads)} heads ({', '.join(heads) or 'no revisions'}): "
            "merge them with `alembic merge heads -m merge`"
        )
    return heads[0]


def assert_revisions_round_trip(
    database_url: str, config_path: str | Path = "alembic.ini"
) -> list[str]:
    """Every revision upgrades, downgrades and upgrades again, one at a time, from empty.

    So each downgrade really undoes its upgrade: a rollback in production is one command.

    Args:
        database_url: An empty database.
        config_path: The service's ``alembic.ini``.

    Returns:
        The revisions checked, oldest first.
    """
    settings = load_settings(database_url=database_url)
    script = ScriptDirectory.from_config(Config(str(config_path)))
    revisions = [revision.revision for revision in reversed(list(script.walk_revisions()))]
    for revision in revisions:
        step = "upgrade"
        try:
            upgrade(config_path, revision=revision, settings=settings)
            step = "downgrade"
            downgrade("-1", config_path, settings=settings)
            step = "upgrade again"
            upgrade(config_path, revision=revision, settings=settings)
        except MigrationError as exc:
            raise AssertionError(f"{revision}: {step} failed: {exc}") from exc
    return revisions


def assert_models_match_migrations(
    database_url: str, config_path: str | Path = "alembic.ini"
) -> None:
    """After every revision, the database matches the models: no change lacks a revision.

    Args:
        database_url: An empty database (or one the migrations own).
        config_path: The service's ``alembic.ini``.
    """
    settings = load_settings(database_url=database_url)
    upgrade(config_path, settings=settings)
    state = check(config_path, settings=settings)
    if state.drift:
        raise AssertionError(
            "the models differ from the migrations; write a revision "
            "(alembic revision --autogenerate):\n  " + "\n  ".join(state.drift)
        )


def assert_migrations_lint_clean(
    config_path: str | Path = "alembic.ini", *, since: str = "base"
) -> LintReport:
    """``omnistack db lint`` finds nothing unsafe in the revisions after ``since``.

    Returns:
        The report (its ``allowed`` lists the reviewed exceptions).
    """
    report = lint_migrations(config_path, since=since)
    if not report.ok:
        raise AssertionError(render_text(report))
    return report
