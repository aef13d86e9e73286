"""The statement checks: the linter's rules applied to the SQL of the revisions, in order.

State carries across statements because safety depends on what came before: an index on a
table created in the same revision is harmless (nobody else can see the table yet), SET NOT
NULL is cheap once a validated ``CHECK (column IS NOT NULL)`` exists, and CONCURRENTLY is
only legal outside the transaction Alembic opens around each revision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from omnistack_core.db.lint.sql import (
    Cursor,
    Statement,
    Token,
    has_sequence,
    split_top_level,
    top_level_keywords,
)

# Functions whose value differs per row: as a column default they force a table rewrite.
VOLATILE_FUNCTIONS = frozenset(
    {
        "random",
        "gen_random_uuid",
        "uuid_generate_v1",
        "uuid_generate_v1mc",
        "uuid_generate_v4",
        "uuidv4",
        "uuidv7",
        "clock_timestamp",
        "timeofday",
        "nextval",
        "txid_current",
    }
)
_SERIAL_TYPES = frozenset({"SERIAL", "BIGSERIAL", "SMALLSERIAL", "SERIAL2", "SERIAL4", "SERIAL8"})
_TABLE_CONSTRAINTS = frozenset({"CONSTRAINT", "CHECK", "FOREIGN", "UNIQUE", "PRIMARY", "EXCLUDE"})
# Where a column default's expression ends: the next column constraint.
_AFTER_DEFAULT = frozenset(
    {"CONSTRAINT", "NOT", "NULL", "CHECK", "UNIQUE", "PRIMARY", "REFERENCES", "GENERATED"}
    | {"COLLATE"}
)


@dataclass(frozen=True, slots=True)
class Location:
    """Where a statement came from: the revision and the line of its file that emitted it."""

    revision: str
    path: str
    line: int


@dataclass(frozen=True, slots=True)
class Finding:
    """One unsafe statement.

    Attributes:
        rule: The rule id (see :data:`~omnistack_core.db.lint.rules.RULES`).
        revision: The revision it is in.
        path: The revision's file.
        line: The line in that file.
        statement: The SQL, on one line.
    """

    rule: str
    revision: str
    path: str
    line: int
    statement: str


@dataclass(slots=True)
class DatabaseFacts:
    """What the database itself says, when the linter can ask it.

    Attributes:
        table_rows: Estimated rows per table (tables the database does not have are absent).
        not_null_checks: ``(table, column)`` pairs with a validated ``CHECK (column IS NOT
            NULL)`` already in place.
    """

    table_rows: dict[str, float] = field(default_factory=dict)
    not_null_checks: set[tuple[str, str]] = field(default_factory=set)


class StatementChecker:
    """Applies the rules to each statement of a run of revisions, oldest first."""

    def __init__(
        self,
        mapped_columns: Mapping[str, frozenset[str]],
        facts: DatabaseFacts | None = None,
        large_table_rows: float = 100_000,
    ) -> None:
        self._mapped = mapped_columns
        self._facts = facts or DatabaseFacts()
        self._large_table_rows = large_table_rows
        self._in_transaction = False
        self._revision: str | None = None
        self._new_tables: set[str] = set()
        self._validated = set(self._facts.not_null_checks)
        self._unvalidated: dict[str, tuple[str, str]] = {}
        self._findings: list[Finding] = []
        self._where = Location("", "", 0)
        self._statement_text = ""

    def check(self, statement: Statement, where: Location | None) -> list[Finding]:
        """The findings for one statement; ``where`` is None for Alembic's own bookkeeping."""
        self._findings = []
        self._statement_text = statement.text
        if where is not None:
            self._where = where
        if where is not None and where.revision != self._revision:
            # A table is new only to the revision that creates it: a later revision runs
            # when the table may already hold rows.
            self._revision, self._new_tables = where.revision, set()
        cursor = Cursor(statement.tokens)
        if cursor.accept("BEGIN") or cursor.accept("START", "TRANSACTION"):
            self._in_transaction = True
        elif cursor.peek() in ("COMMIT", "END", "ROLLBACK"):
            self._in_transaction = False
        elif where is not None:
            self._dispatch(cursor)
        return self._findings

    def _dispatch(self, cursor: Cursor) -> None:
        if cursor.accept("CREATE"):
            cursor.accept("UNIQUE")
            if cursor.accept("INDEX"):
                self._create_index(cursor)
                return
            while cursor.peek() in ("UNLOGGED", "TEMP", "TEMPORARY", "GLOBAL", "LOCAL"):
                cursor.take()
            if cursor.accept("TABLE"):
                cursor.accept("IF", "NOT", "EXISTS")
                self._new_tables.add(cursor.qualified_name())
        elif cursor.accept("DROP", "TABLE"):
            cursor.accept("IF", "EXISTS")
            for part in split_top_level(cursor.rest()):
                table = Cursor(part).qualified_name()
                if table in self._mapped:
                    self._flag("drop-mapped-table")
        elif cursor.accept("DROP", "INDEX") or cursor.accept("REINDEX"):
            self._concurrently(concurrently="CONCURRENTLY" in top_level_keywords(cursor.rest()))
        elif cursor.accept("ALTER", "TABLE"):
            cursor.accept("IF", "EXISTS")
            cursor.accept("ONLY")
            table = cursor.qualified_name()
            cursor.accept("*")
            self._alter_table(table, cursor)

    def _create_index(self, cursor: Cursor) -> None:
        concurrently = cursor.accept("CONCURRENTLY")
        cursor.accept("IF", "NOT", "EXISTS")
        if cursor.peek() != "ON":
            cursor.take()  # the index's name
        cursor.accept("ON")
        cursor.accept("ONLY")
        table = cursor.qualified_name()
        self._concurrently(concurrently=concurrently)
        if not concurrently and self._existing(table):
            self._flag("index-not-concurrent")

    def _concurrently(self, *, concurrently: bool) -> None:
        if concurrently and self._in_transaction:
            self._flag("concurrent-in-transaction")

    def _alter_table(self, table: str, cursor: Cursor) -> None:
        existing = self._existing(table)
        if cursor.accept("RENAME"):
            if cursor.accept("TO"):
                renamed = cursor.qualified_name()
                if existing:
                    self._flag("rename-table")
                else:
                    self._new_tables.add(renamed)
            elif cursor.peek() != "CONSTRAINT" and existing:
                self._flag("rename-column")
            return
        for action in split_top_level(cursor.rest()):
            self._action(table, Cursor(action))

    def _action(self, table: str, cursor: Cursor) -> None:
        existing = self._existing(table)
        if cursor.accept("ADD"):
            if cursor.peek() in _TABLE_CONSTRAINTS:
                self._add_constraint(table, cursor)
            elif existing:
                self._add_column(table, cursor)
        elif cursor.accept("ALTER"):
            cursor.accept("COLUMN")
            token = cursor.take()
            column = token.name if token else ""
            if cursor.accept("SET", "NOT", "NULL"):
                if existing and (table, column) not in self._validated:
                    self._flag("set-not-null")
            elif (cursor.accept("TYPE") or cursor.accept("SET", "DATA", "TYPE")) and existing:
                self._flag("change-column-type")
        elif cursor.accept("DROP"):
            if cursor.peek() == "CONSTRAINT":
                return
            cursor.accept("COLUMN")
            cursor.accept("IF", "EXISTS")
            token = cursor.take()
            if token is not None and token.name in self._mapped.get(table, ()):
                self._flag("drop-mapped-column")
        elif cursor.accept("VALIDATE", "CONSTRAINT"):
            token = cursor.take()
            if token is not None and token.name in self._unvalidated:
                self._validated.add(self._unvalidated.pop(token.name))

    def _add_constraint(self, table: str, cursor: Cursor) -> None:
        name = ""
        if cursor.accept("CONSTRAINT"):
            token = cursor.take()
            name = token.name if token else ""
        kind = cursor.peek()
        body = cursor.rest()
        words = top_level_keywords(body)
        not_valid = has_sequence(words, "NOT", "VALID")
        if kind == "CHECK":
            column = not_null_check_column(body[1:])
            if column is not None:
                if not_valid:
                    self._unvalidated[name] = (table, column)
                else:
                    self._validated.add((table, column))
        if not self._existing(table):
            return
        if kind == "FOREIGN" and not not_valid:
            self._flag("foreign-key-not-valid")
        elif kind == "CHECK" and not not_valid:
            self._flag("check-not-valid")
        elif kind in ("UNIQUE", "PRIMARY") and not has_sequence(words, "USING", "INDEX"):
            self._flag("unique-without-index")

    def _add_column(self, table: str, cursor: Cursor) -> None:
        cursor.accept("COLUMN")
        cursor.accept("IF", "NOT", "EXISTS")
        cursor.take()  # the column's name
        definition = cursor.rest()
        words = top_level_keywords(definition)
        default = _default_expression(definition)
        computed_per_row = (
            bool(words and words[0] in _SERIAL_TYPES)
            or has_sequence(words, "GENERATED")
            or any(_calls_volatile(token) for token in default or ())
        )
        if has_sequence(words, "NOT", "NULL") and default is None and not computed_per_row:
            self._flag("add-column-not-null")
        if computed_per_row and not self._known_small(table):
            self._flag("volatile-default")
        if "UNIQUE" in words or has_sequence(words, "PRIMARY", "KEY"):
            self._flag("unique-without-index")

    def _existing(self, table: str) -> bool:
        return table not in self._new_tables

    def _known_small(self, table: str) -> bool:
        rows = self._facts.table_rows.get(table)
        return rows is not None and rows < self._large_table_rows

    def _flag(self, rule: str) -> None:
        where = self._where
        self._findings.append(
            Finding(rule, where.revision, where.path, where.line, self._statement_text)
        )


def _parenthesized(tokens: tuple[Token, ...]) -> tuple[Token, ...]:
    """The leading ``( ... )`` group of ``tokens``, parentheses included."""
    depth = 0
    for index, token in enumerate(tokens):
        depth += {"(": 1, ")": -1}.get(token.text, 0)
        if depth == 0:
            return tokens[: index + 1]
    return tokens


def _default_expression(definition: tuple[Token, ...]) -> tuple[Token, ...] | None:
    depth = 0
    start: int | None = None
    for index, token in enumerate(definition):
        if depth == 0 and start is not None and token.keyword in _AFTER_DEFAULT:
            return definition[start:index]
        if depth == 0 and start is None and token.keyword == "DEFAULT":
            start = index + 1
        depth += {"(": 1, ")": -1}.get(token.text, 0)
    return None if start is None else definition[start:]


def _calls_volatile(token: Token) -> bool:
    return token.kind in ("word", "quoted") and token.name in VOLATILE_FUNCTIONS


def not_null_check_column(tokens: tuple[Token, ...]) -> str | None:
    """The column a ``CHECK (column IS NOT NULL)`` is about; ``tokens`` start after CHECK."""
    expression = _parenthesized(tokens)
    while len(expression) >= 2 and expression[0].text == "(" and expression[-1].text == ")":
        expression = expression[1:-1]
    if len(expression) != 4 or expression[0].kind not in ("word", "quoted"):
        return None
    if [token.keyword for token in expression[1:]] != ["IS", "NOT", "NULL"]:
        return None
    return expression[0].name
