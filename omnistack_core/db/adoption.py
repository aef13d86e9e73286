"""Adopting module branches in a database made before modules shipped their revisions.

Services generated before the modules' branches created the modules' tables in their own
first revision. Their databases already hold those tables, so the branches' first revisions
must not run there: :func:`adopt` checks that the tables are what the first revision would
make and records that revision as applied (Alembic's ``stamp``), touching no row. Where the
tables differ it refuses and says how. An index or a table that a later revision of the branch
creates is not a difference: the first revision never made it, and the upgrade after adoption
will.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, inspect

from omnistack_core.db.migrations import (
    DEFAULT_LOCK_TIMEOUT,
    current_heads,
    locked_connection,
    migration_config,
    migration_engine,
)
from omnistack_core.migration_branch import MigrationBranch
from omnistack_core.settings import Settings, load_settings

Outcome = Literal["adopted", "migrated already", "nothing to adopt", "refused"]


@dataclass(frozen=True, slots=True)
class Adoption:
    """What became of one branch.

    Attributes:
        label: The branch.
        revision: Its first revision.
        outcome: ``adopted`` (recorded as applied), ``migrated already``, ``nothing to
            adopt`` (none of its tables exist: an upgrade creates them), or ``refused``.
        differences: Why it was refused: how the tables differ from the first revision's.
    """

    label: str
    revision: str
    outcome: Outcome
    differences: tuple[str, ...] = ()


def adopt(
    config_path: str | Path = "alembic.ini",
    *,
    branches: Sequence[MigrationBranch],
    metadata: Mapping[str, Sequence[MetaData]],
    settings: Settings | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> list[Adoption]:
    """Record each branch's first revision as applied where its tables already exist.

    Run it once, with the release that brought the branches, before ``omnistack db upgrade``
    (their first revisions describe the tables as that release's models do).

    Args:
        config_path: The service's ``alembic.ini``.
        branches: The installed modules' branches.
        metadata: Each branch's tables, by branch label (``Module.metadata()``).
        settings: The settings; loaded from the environment when None.
        lock_timeout: Seconds to wait for another runner's migration lock.

    Returns:
        One outcome per branch, in order.
    """
    settings = settings or load_settings()
    config = migration_config(config_path, branches)
    return asyncio.run(_adopt(config, branches, metadata, settings, lock_timeout))


async def _adopt(
    config: Any,
    branches: Sequence[MigrationBranch],
    metadata: Mapping[str, Sequence[MetaData]],
    settings: Settings,
    lock_timeout: float,
) -> list[Adoption]:
    script = ScriptDirectory.from_config(config)
    engine = migration_engine(settings)
    outcomes = []
    try:
        async with locked_connection(engine, lock_timeout) as (connection, _):
            for branch in branches:
                first = _first_revision(script, branch.label)
                adoption = await connection.run_sync(
                    _judge, script, branch.label, first, metadata.get(branch.label, ())
                )
                if adoption.outcome == "adopted":
                    await connection.run_sync(_stamp, config, first)
                outcomes.append(adoption)
    finally:
        await engine.dispose()
    return outcomes


def _first_revision(script: ScriptDirectory, label: str) -> str:
    for revision in script.walk_revisions():
        if label in revision.branch_labels and not revision.down_revision:
            return revision.revision
    raise LookupError(f"no revision starts the branch {label}")  # pragma: no cover


def _judge(
    connection: Connection,
    script: ScriptDirectory,
    label: str,
    first: str,
    metadata: Sequence[MetaData],
) -> Adoption:
    heads = current_heads(connection)
    applied = {revision.revision for revision in script.iterate_revisions(heads, "base")}
    if first in applied:
        return Adoption(label, first, "migrated already")
    tables = {name for tables in metadata for name in tables.tables}
    if not set(inspect(connection).get_table_names()) & tables:
        return Adoption(label, first, "nothing to adopt")
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    later = _later_sources(script, label, first)
    differences = [
        _describe(difference)
        for tables_metadata in metadata
        for difference in compare_metadata(context, tables_metadata)
        if _table_of(difference) in tables and not _made_later(difference, later)
    ]
    connection.rollback()
    if differences:
        return Adoption(label, first, "refused", tuple(differences))
    return Adoption(label, first, "adopted")


def _later_sources(script: ScriptDirectory, label: str, first: str) -> str:
    """The source of the branch's revisions after ``first``, where later indexes are named."""
    sources = [
        Path(revision.path).read_text(encoding="utf-8")
        for revision in script.walk_revisions()
        if revision.revision != first and label in _branch_of(script, revision.revision)
    ]
    return "\n".join(sources)


def _branch_of(script: ScriptDirectory, revision: str) -> set[str]:
    labels: set[str] = set()
    for ancestor in script.iterate_revisions(revision, "base"):
        labels |= set(ancestor.branch_labels)
    return labels


def _made_later(difference: Any, later_sources: str) -> bool:
    # Indexes: their names are unique in a database and written out in the revision that
    # creates them (op.f("ix_...")), so finding one there is not a coincidence. Tables: a
    # later revision's op.create_table("name", ...) names them as its first argument.
    entry = _entry(difference)
    kind = str(entry[0])
    name = getattr(entry[1], "name", None)
    if not name:
        return False
    if kind == "add_index":
        return f'"{name}"' in later_sources
    if kind == "add_table":
        return re.search(rf'create_table\(\s*"{re.escape(name)}"', later_sources) is not None
    return False


def _stamp(connection: Connection, config: Any, revision: str) -> None:
    config.attributes["connection"] = connection
    try:
        command.stamp(config, revision)
    finally:
        del config.attributes["connection"]
    connection.commit()


# Alembic's autogenerate diffs: ("add_table", Table), ("add_column", schema, table, Column),
# ("add_index", Index)..., and for a column's type or nullability a list of
# ("modify_type", schema, table, column, existing, found, expected) tuples.


def _entry(difference: Any) -> tuple[Any, ...]:
    return tuple(difference[0] if isinstance(difference, list) else difference)


def _table_of(difference: Any) -> str | None:
    entry = _entry(difference)
    kind = str(entry[0])
    if kind in ("add_table", "remove_table"):
        return str(entry[1].name)
    if kind in ("add_column", "remove_column") or kind.startswith("modify_"):
        return str(entry[2])
    table = getattr(entry[1], "table", None)
    return str(table.name) if table is not None else None


def _describe(difference: Any) -> str:
    entry = _entry(difference)
    kind, table = str(entry[0]), _table_of(difference)
    if kind == "add_table":
        return f"table {table} is missing"
    if kind.startswith("modify_"):
        what = kind.removeprefix("modify_")
        return f"{table}.{entry[3]}: {what} is {entry[-2]}, the revision makes {entry[-1]}"
    subject = entry[3].name if kind.endswith("_column") else getattr(entry[1], "name", "")
    if kind.startswith("add_"):
        return f"{table}: {kind.removeprefix('add_')} {subject} is missing"
    return f"{table}: {kind.removeprefix('remove_')} {subject} is not the revision's"
