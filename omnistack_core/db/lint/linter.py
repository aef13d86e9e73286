"""Lint the revisions a deploy would apply, from the SQL Alembic writes for them offline.

Alembic runs the revisions in offline (``--sql``) mode for PostgreSQL, and every chunk of SQL
it writes is traced back to the line of the revision file that produced it, by walking the
Python stack at the moment it is written. So raw ``op.execute`` SQL is linted exactly like
``op.add_column``, and each finding names its file and line.
"""

from __future__ import annotations

import ast
import asyncio
import io
import re
import sys
import tokenize
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from sqlalchemy import Connection, MetaData, text

from omnistack_core.errors import MissingDependencyError

try:
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.script.revision import ResolutionError
    from alembic.util.exc import CommandError
except ImportError as exc:  # pragma: no cover - exercised in a run without the extra
    raise MissingDependencyError("db.lint", "migrations") from exc

from omnistack_core.db.engine import engine_from_settings
from omnistack_core.db.lint.checks import (
    DatabaseFacts,
    Finding,
    Location,
    StatementChecker,
    not_null_check_column,
)
from omnistack_core.db.lint.report import LintReport
from omnistack_core.db.lint.rules import RULES
from omnistack_core.db.lint.sql import split_statements, table_key
from omnistack_core.db.migrations import SQL_CAPTURE_ATTRIBUTE, MigrationError, migration_config
from omnistack_core.migration_branch import MigrationBranch
from omnistack_core.settings import Settings, load_settings

DEFAULT_LARGE_TABLE_ROWS = 100_000
_ALLOW = re.compile(r"omnistack-lint:\s*allow\s+([a-z0-9_,\s-]+?)\s*(?:--.*|\(.*)?$")


def lint_migrations(
    config_path: str | Path = "alembic.ini",
    *,
    since: str | None = None,
    settings: Settings | None = None,
    large_table_rows: float = DEFAULT_LARGE_TABLE_ROWS,
    branches: Sequence[MigrationBranch] = (),
) -> LintReport:
    """Lint the revisions after ``since`` (default: those the database has not applied).

    Args:
        config_path: The service's ``alembic.ini``.
        since: Lint the revisions after this one; ``"base"`` lints every revision. When
            None, the database (``DATABASE_DIRECT_URL`` else ``DATABASE_URL``) says where it
            is, and on PostgreSQL also how big its tables are and which NOT NULL checks it
            already has, which spares findings that cannot hurt.
        settings: The settings, when the database is asked; loaded from the environment
            when None.
        large_table_rows: Tables the database estimates below this many rows are small
            enough to rewrite (the volatile-default rule); tables it cannot size are large.
        branches: The installed modules' branches, whose pending revisions are linted too.

    Returns:
        The report; ``report.ok`` is False when anything unsafe was found.

    Raises:
        MigrationError: ``since`` is not a revision, or ``env.py`` does not run through
            ``run_alembic``.
    """
    config = migration_config(config_path, branches)
    facts: DatabaseFacts | None = None
    start: tuple[str, ...] = ()
    if since is None:
        start, facts = asyncio.run(_read_database(settings or load_settings()))
    elif since != "base":
        start = (since,)
    capture = _SqlCapture()
    config.attributes[SQL_CAPTURE_ATTRIBUTE] = capture
    # Every revision's SQL from the start, of every branch: offline Alembic starts from one
    # revision only, and the database sits at one per branch. The applied ones are left out
    # below.
    command.upgrade(config, "heads", sql=True)
    if capture.script is None or capture.target_metadata is None:
        raise MigrationError(
            "migrations/env.py does not run through omnistack_core.db.migrations.run_alembic, "
            "so the linter cannot read its SQL"
        )
    # The script directory Alembic loaded for the run: loading 200 revisions twice is slow.
    try:
        pending = capture.script.iterate_revisions("heads", start or None)
        revisions = list(reversed(list(pending)))
    except (CommandError, ResolutionError) as exc:
        raise MigrationError(f"--since {since}: {exc}" if since else str(exc)) from exc
    checker = StatementChecker(_mapped_columns(capture.target_metadata), facts, large_table_rows)
    linted = {revision.revision for revision in revisions}
    findings: list[Finding] = []
    for chunk, where in capture.chunks:
        if where is not None and where.revision not in linted:
            continue  # applied already: its SQL was rendered only to reach the pending ones
        for statement in split_statements(chunk):
            findings.extend(checker.check(statement, where))
    allowed_rules: dict[str, set[str]] = {}
    for revision in revisions:
        path = _display_path(revision.path)
        findings.extend(_downgrade_findings(revision.revision, path))
        rules, unknown = _allow_comments(revision.revision, path)
        allowed_rules[revision.revision] = rules
        findings.extend(unknown)
    order = {revision.revision: index for index, revision in enumerate(revisions)}
    findings.sort(key=lambda finding: (order[finding.revision], finding.line))
    kept = tuple(f for f in findings if f.rule not in allowed_rules[f.revision])
    silenced = tuple(f for f in findings if f.rule in allowed_rules[f.revision])
    return LintReport(tuple(revision.revision for revision in revisions), kept, silenced)


class _SqlCapture:
    """Alembic's offline output buffer: keeps each chunk with the revision line that wrote it."""

    def __init__(self) -> None:
        self.chunks: list[tuple[str, Location | None]] = []
        self.target_metadata: MetaData | Sequence[MetaData] | None = None
        self.script: ScriptDirectory | None = None
        self._paths: dict[str, str] = {}

    def write(self, chunk: str) -> int:
        where = None
        frame = sys._getframe(1)  # noqa: SLF001 - the caller chain is the point
        while frame is not None:
            module = frame.f_globals
            # Alembic loads each revision as a module holding these three names.
            if "down_revision" in module and "upgrade" in module and "revision" in module:
                where = Location(str(module["revision"]), self._path(frame), frame.f_lineno)
                break
            frame = frame.f_back  # type: ignore[assignment]
        self.chunks.append((chunk, where))
        return len(chunk)

    def flush(self) -> None:
        """Nothing is buffered."""

    def _path(self, frame: FrameType) -> str:
        filename = frame.f_code.co_filename
        if filename not in self._paths:
            self._paths[filename] = _display_path(filename)
        return self._paths[filename]


def _display_path(path: str) -> str:
    absolute = Path(path).resolve()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def _mapped_columns(target: MetaData | Sequence[MetaData]) -> dict[str, frozenset[str]]:
    metadatas = [target] if isinstance(target, MetaData) else list(target)
    return {
        table_key(table.name, table.schema): frozenset(column.name for column in table.columns)
        for metadata in metadatas
        for table in metadata.tables.values()
    }


def _downgrade_findings(revision: str, path: str) -> list[Finding]:
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "downgrade":
            if all(_does_nothing(statement) for statement in node.body):
                return [
                    Finding(
                        "missing-downgrade", revision, path, node.lineno, "def downgrade(): nothing"
                    )
                ]
            return []
    return [Finding("missing-downgrade", revision, path, 1, "no downgrade() in the revision")]


def _does_nothing(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.Pass):
        return True
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
        return True  # a docstring or ...
    if isinstance(statement, ast.Raise) and statement.exc is not None:
        raised = statement.exc.func if isinstance(statement.exc, ast.Call) else statement.exc
        return isinstance(raised, ast.Name) and raised.id == "NotImplementedError"
    return False


def _allow_comments(revision: str, path: str) -> tuple[set[str], list[Finding]]:
    rules: set[str] = set()
    unknown: list[Finding] = []
    source = Path(path).read_text(encoding="utf-8")
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        match = _ALLOW.search(token.string)
        if match is None:
            continue
        for rule in re.split(r"[\s,]+", match.group(1).strip()):
            if rule in RULES:
                rules.add(rule)
            else:
                unknown.append(
                    Finding("unknown-rule", revision, path, token.start[0], token.string)
                )
    return rules, unknown


async def _read_database(settings: Settings) -> tuple[tuple[str, ...], DatabaseFacts | None]:
    url = settings.migration_database_url
    engine = engine_from_settings(settings.model_copy(update={"db_use_null_pool": True}), url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_database_state)
    finally:
        await engine.dispose()


def _database_state(connection: Connection) -> tuple[tuple[str, ...], DatabaseFacts | None]:
    current = tuple(MigrationContext.configure(connection).get_current_heads())
    if connection.dialect.name != "postgresql":
        return current, None
    facts = DatabaseFacts()
    # reltuples is -1 until a table is first analysed: size it at about 100 bytes a row.
    sizes = connection.execute(
        text(
            "SELECT c.relname, n.nspname, CASE WHEN c.reltuples >= 0 THEN c.reltuples "
            "ELSE pg_relation_size(c.oid) / 100.0 END "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        )
    )
    for name, schema, rows in sizes:
        facts.table_rows[table_key(name, schema)] = float(rows)
    checks = connection.execute(
        text(
            "SELECT c.relname, n.nspname, pg_get_constraintdef(k.oid) "
            "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE k.contype = 'c' AND k.convalidated"
        )
    )
    for name, schema, definition in checks:
        for statement in split_statements(definition):
            column = not_null_check_column(statement.tokens[1:])
            if column is not None:
                facts.not_null_checks.add((table_key(name, schema), column))
    connection.rollback()
    return current, facts
