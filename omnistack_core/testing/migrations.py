"""Checks that hold a service's migrations to the deployment guide, for its own test suite.

Each raises ``AssertionError`` with what to fix, so a test is one call::

    from omnistack_core.testing.migrations import assert_one_head_per_branch

    def test_one_head_per_branch() -> None:
        assert_one_head_per_branch()

They see the service's revisions and the branches of the modules its app installs (the app
``[tool.omnistack]`` names in ``pyproject.toml``, or ``app=``). Run the database checks on an
empty database (the ``empty_postgres_url`` fixture). Needs the ``migrations`` extra.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from alembic.script import ScriptDirectory

from omnistack_core.cli.service_app import configured_app
from omnistack_core.db.lint import LintReport, lint_migrations, render_text
from omnistack_core.db.migrations import (
    MigrationError,
    branch_of,
    check,
    downgrade,
    migration_config,
    upgrade,
)
from omnistack_core.migration_branch import MigrationBranch
from omnistack_core.service_migrations import branches_of, modules_of_app
from omnistack_core.settings import load_settings


def service_branches(app: str | None = None) -> list[MigrationBranch]:
    """The branches of the modules the service's app installs (``app``, else the pyproject's)."""
    spec = app or configured_app(argparse.Namespace(app=None))
    return branches_of(modules_of_app(spec)) if spec else []


def assert_one_head_per_branch(
    config_path: str | Path = "alembic.ini", *, app: str | None = None
) -> dict[str, str]:
    """Each branch, the service's and each module's, is one line of revisions.

    Two heads in one branch are two revisions nobody merged.

    Returns:
        Each branch's head, by branch.
    """
    script = ScriptDirectory.from_config(migration_config(config_path, service_branches(app)))
    heads: dict[str, list[str]] = {}
    for head in script.get_heads():
        heads.setdefault(branch_of(script, head), []).append(head)
    split = {branch: found for branch, found in heads.items() if len(found) > 1}
    if split:
        raise AssertionError(
            "; ".join(
                f"the {branch} branch has {len(found)} heads ({', '.join(found)}): merge them "
                f"with `alembic merge -m merge {' '.join(found)}`"
                for branch, found in split.items()
            )
        )
    return {branch: found[0] for branch, found in heads.items()}


def assert_revisions_round_trip(
    database_url: str, config_path: str | Path = "alembic.ini", *, app: str | None = None
) -> list[str]:
    """Every revision upgrades, downgrades and upgrades again, one at a time, from empty.

    So each downgrade really undoes its upgrade: a rollback in production is one command.
    The modules' revisions are checked too, in the order an upgrade applies them.

    Args:
        database_url: An empty database.
        config_path: The service's ``alembic.ini``.
        app: The app whose modules' branches count; the pyproject's when None.

    Returns:
        The revisions checked, oldest first.
    """
    settings = load_settings(database_url=database_url)
    branches = service_branches(app)
    script = ScriptDirectory.from_config(migration_config(config_path, branches))
    revisions = list(reversed(list(script.walk_revisions())))
    for revision in revisions:
        # One step back on its own branch: the other branches stay where they are.
        below = revision.down_revision or f"{revision.revision}@base"
        step = "upgrade"
        try:
            upgrade(config_path, revision=revision.revision, settings=settings, branches=branches)
            step = "downgrade"
            downgrade(_one(below), config_path, settings=settings, branches=branches)
            step = "upgrade again"
            upgrade(config_path, revision=revision.revision, settings=settings, branches=branches)
        except MigrationError as exc:
            raise AssertionError(f"{revision.revision}: {step} failed: {exc}") from exc
    return [revision.revision for revision in revisions]


def _one(revisions: str | Sequence[str]) -> str:
    # A merge revision goes back to its first parent; the others follow on their branches.
    return revisions if isinstance(revisions, str) else revisions[0]


def assert_models_match_migrations(
    database_url: str, config_path: str | Path = "alembic.ini", *, app: str | None = None
) -> None:
    """After every revision, the database matches the models: no change lacks a revision.

    Args:
        database_url: An empty database (or one the migrations own).
        config_path: The service's ``alembic.ini``.
        app: The app whose modules' branches count; the pyproject's when None.
    """
    settings = load_settings(database_url=database_url)
    branches = service_branches(app)
    upgrade(config_path, settings=settings, branches=branches)
    state = check(config_path, settings=settings, branches=branches)
    if state.drift:
        raise AssertionError(
            "the models differ from the migrations; write a revision "
            "(alembic revision --autogenerate):\n  " + "\n  ".join(state.drift)
        )


def assert_migrations_lint_clean(
    config_path: str | Path = "alembic.ini", *, since: str = "base", app: str | None = None
) -> LintReport:
    """``omnistack db lint`` finds nothing unsafe in the revisions after ``since``.

    The modules' revisions are linted too.

    Returns:
        The report (its ``allowed`` lists the reviewed exceptions).
    """
    report = lint_migrations(config_path, since=since, branches=service_branches(app))
    if not report.ok:
        raise AssertionError(render_text(report))
    return report
