"""A database that cannot be reached, said in one line: where, why, and what to check.

Drivers raise these several layers deep (SQLAlchemy wraps asyncpg, which wraps the socket's
error), and printed whole they run to pages. :func:`connection_problem` finds the cause in
the chain and names the host, port and database, never the password.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

# asyncpg's and sqlite3's errors, by name: the drivers are optional imports.
_REASONS = {
    "InvalidCatalogNameError": "the database does not exist",
    "InvalidPasswordError": "the password was refused",
    "InvalidAuthorizationSpecificationError": "the user was refused",
    "CannotConnectNowError": "the server is starting up or shutting down",
    "TooManyConnectionsError": "the server has no connection left",
}


def connection_problem(url: str, error: BaseException) -> str | None:
    """One line saying why ``url`` cannot be reached, or None if ``error`` is about else.

    Args:
        url: The database URL that was used (its password is never shown).
        error: What connecting raised.
    """
    reason = _reason(error)
    if reason is None:
        return None
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"cannot reach the database: {reason}; check DATABASE_URL"
    if parsed.get_backend_name() == "sqlite":
        where = f"the SQLite file {parsed.database}"
        check = "that its folder exists and is writable"
    else:
        where = (
            f"the database {parsed.database or '(none named)'} on "
            f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
        )
        check = "that the server runs, the host and port are right, and the database exists"
    shown = parsed.render_as_string(hide_password=True)
    return (
        f"cannot reach {where} ({shown}): {reason}; check DATABASE_URL (DATABASE_DIRECT_URL "
        f"for migrations), {check}"
    )


def _reason(error: BaseException) -> str | None:
    for cause in _chain(error):
        reason = _REASONS.get(type(cause).__name__) or _os_reason(cause)
        if reason is not None:
            return reason
        if type(cause).__name__ == "OperationalError" and "unable to open database" in str(cause):
            return "the file cannot be opened"
    return None


def _os_reason(cause: BaseException) -> str | None:
    if isinstance(cause, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(cause, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(cause, TimeoutError):
        return "the connection timed out"
    if isinstance(cause, OSError):
        return cause.strerror or type(cause).__name__
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        cause = pending.pop()
        if cause is None or id(cause) in seen:
            continue
        seen.add(id(cause))
        yield cause
        pending += [cause.__cause__, cause.__context__, getattr(cause, "orig", None)]
