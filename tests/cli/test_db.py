"""``omnistack db``: a database that cannot be reached is one line saying where and why."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from omnistack_core.cli import main
from tests.db.migration_project import write_project

pytest.importorskip("alembic", reason="needs the migrations extra")
pytest.importorskip("asyncpg", reason="needs the postgres extra")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("command", [["upgrade"], ["current"], ["check"], ["downgrade", "base"]])
def test_a_refused_connection_is_one_line_naming_host_port_and_database(
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    write_project(isolated_environment, {})
    port = closed_port()
    monkeypatch.setenv("DATABASE_URL", f"postgres://app:hidden-pw@127.0.0.1:{port}/shop")

    status = main(["db", *command])

    [line] = capsys.readouterr().err.splitlines()
    assert status == 1
    assert line == (
        f"error: cannot reach the database shop on 127.0.0.1:{port} "
        f"(postgresql+asyncpg://app:***@127.0.0.1:{port}/shop): the connection was refused; "
        "check DATABASE_URL (DATABASE_DIRECT_URL for migrations), that the server runs, the "
        "host and port are right, and the database exists"
    )
