"""Database metrics from SQLAlchemy engine events: statements counted and timed by operation.

Separate from :mod:`omnistack_core.observability.metrics` so that building an app never
imports SQLAlchemy; the engine is instrumented at start-up, when it exists.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from omnistack_core.observability.metrics import DB_QUERIES, DB_QUERY_DURATION

_OPERATIONS = frozenset({"select", "insert", "update", "delete"})


def instrument_engine(engine: AsyncEngine) -> None:
    """Count and time every statement ``engine`` executes, by operation.

    Args:
        engine: The engine to instrument (``app.state.database.engine``).
    """

    @event.listens_for(engine.sync_engine, "before_cursor_execute", named=True)
    def _started(conn: Any, **_: Any) -> None:
        conn.info.setdefault("omnistack_query_started", []).append(time.perf_counter())

    @event.listens_for(engine.sync_engine, "after_cursor_execute", named=True)
    def _finished(conn: Any, statement: str, **_: Any) -> None:
        _record(conn, statement)

    @event.listens_for(engine.sync_engine, "handle_error")
    def _failed(context: Any) -> None:
        # A failed statement never reaches after_cursor_execute; count it all the same.
        if context.connection is not None and context.statement is not None:
            _record(context.connection, context.statement)


def _record(conn: Any, statement: str) -> None:
    started = conn.info.get("omnistack_query_started")
    if not started:
        return
    seconds = time.perf_counter() - started.pop()
    words = statement.lstrip().split(None, 1)
    operation = words[0].lower() if words else ""
    if operation not in _OPERATIONS:
        operation = "other"
    DB_QUERIES.labels(operation).inc()
    DB_QUERY_DURATION.labels(operation).observe(seconds)
