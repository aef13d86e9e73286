"""Race-safe inserts for tables keyed by an outside id (a webhook's, a provider's object).

Both use the database's own ``INSERT … ON CONFLICT`` on PostgreSQL and SQLite, so
two transactions writing one key at once never fail: on PostgreSQL the second waits for the
first to commit, then sees its row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_ignoring_duplicate(
    session: AsyncSession, table: Table, values: dict[str, Any]
) -> bool:
    """Insert a row unless one with the same primary key exists.

    Returns:
        Whether the row was inserted.
    """
    insert_into = _conflict_insert(session.get_bind().dialect.name)
    if insert_into is not None:
        result = await session.execute(insert_into(table).values(**values).on_conflict_do_nothing())
        return bool(result.rowcount)  # type: ignore[attr-defined]
    try:
        async with session.begin_nested():
            await session.execute(insert(table).values(**values))
    except IntegrityError:
        return False
    return True


class Upsert:
    """``INSERT … ON CONFLICT (key) DO UPDATE`` for one table, built once per dialect.

    The row travels as bind parameters, so the statement is built and compiled once and
    reused for every row: building it anew costs more than the database round trip on a
    local PostgreSQL.

    Args:
        table: The table; every execution gives a value for each of its columns.
        key: Columns of the unique constraint that identifies the row.
        update: Columns overwritten from the new row when the row exists.
        update_expressions: Columns set to expressions of the stored row when it exists
            (``{"attempts": table.c.attempts + 1}``).
        where: Update only when the condition it builds holds; it is given the proposed row's
            columns (``lambda new: table.c.created < new.created``, ``table.c`` being the
            stored row's). When it does not hold, the stored row stays as it is.
    """

    def __init__(
        self,
        table: Table,
        *,
        key: Sequence[str],
        update: Sequence[str],
        update_expressions: Mapping[str, Any] | None = None,
        where: Callable[[Any], ColumnElement[bool]] | None = None,
    ) -> None:
        self.table = table
        self.key = list(key)
        self.update = list(update)
        self.update_expressions = dict(update_expressions or {})
        self.where = where
        self._statements: dict[str, Any] = {}

    async def __call__(self, session: AsyncSession, values: Mapping[str, Any]) -> bool:
        """Write ``values``; returns whether a row was inserted or updated."""
        statement = self._statement(session.get_bind().dialect.name)
        return (await session.execute(statement, dict(values))).first() is not None

    def _statement(self, dialect: str) -> Any:
        statement = self._statements.get(dialect)
        if statement is not None:
            return statement
        insert_into = _conflict_insert(dialect)
        if insert_into is None:  # pragma: no cover - the library supports the two databases
            raise NotImplementedError(f"upsert is not implemented for {dialect}")
        row = {column.name: bindparam(column.name, type_=column.type) for column in self.table.c}
        proposed = insert_into(self.table).values(row)
        statement = proposed.on_conflict_do_update(
            index_elements=self.key,
            set_={
                **{name: proposed.excluded[name] for name in self.update},
                **self.update_expressions,
            },
            where=None if self.where is None else self.where(proposed.excluded),
        ).returning(self.table.c[self.key[0]])
        self._statements[dialect] = statement
        return statement


def _conflict_insert(dialect: str) -> Callable[[Table], Any] | None:
    """The ``insert`` with ``ON CONFLICT`` of ``dialect``; None for a database without one.

    Imported when first used: a service loads only its own database's dialect, and importing
    the other costs its start-up a few milliseconds.
    """
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert  # noqa: PLC0415

        return postgresql_insert
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert  # noqa: PLC0415

        return sqlite_insert
    return None
