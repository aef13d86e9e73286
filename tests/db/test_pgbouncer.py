"""Migrations and app traffic behind PgBouncer in transaction mode, as a pooled deploy runs.

PgBouncer is Debian's package, started here on a free port as an unprivileged user (it
refuses to run as root) in front of the test's own database.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from omnistack_core import create_app, load_settings
from omnistack_core.db import DbSession
from omnistack_core.testing.client import app_client
from omnistack_core.testing.pytest_plugin import services_required
from omnistack_core.testing.waiting import wait_until
from tests.db.migration_project import write_project

pytest.importorskip("alembic", reason="needs the migrations extra")
pytest.importorskip("asyncpg", reason="needs the postgres extra")
from omnistack_core.db.migrations import MIGRATION_LOCK_KEY, THROUGH_A_POOLER

pytestmark = [pytest.mark.pgbouncer, pytest.mark.integration]

# A password PostgreSQL's and PgBouncer's trust authentication ignore, but no output may show.
PASSWORD = "pooler-secret-4f7a"

SLOW_REVISIONS = {
    "0001_notes.py": """
        revision = "0001_notes"
        down_revision = None

        def upgrade():
            # Long enough that the three runners overlap: the lock, not luck, serialises them.
            op.execute("SELECT pg_sleep(2)")
            op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True))

        def downgrade():
            op.drop_table("notes")
    """,
    "0002_tags.py": """
        revision = "0002_tags"
        down_revision = "0001_notes"

        def upgrade():
            op.create_table("tags", sa.Column("id", sa.Integer, primary_key=True))

        def downgrade():
            op.drop_table("tags")
    """,
}


def _pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answering(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _as_unprivileged(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]


@pytest.fixture
def pooler_urls(empty_postgres_url: str) -> Iterator[tuple[str, str]]:
    """(through PgBouncer in transaction mode, direct) URLs of an empty database."""
    binary = _pgbouncer_binary()
    if binary is None:
        reason = "pgbouncer is not installed (apt-get install pgbouncer)"
        if services_required():
            pytest.fail(f"{reason} (OMNISTACK_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(reason)
    direct = make_url(empty_postgres_url).set(password=PASSWORD)
    port = _free_port()
    # Not pytest's tmp_path: the unprivileged user must read the configuration.
    folder = Path(tempfile.mkdtemp(prefix="omnistack-pgbouncer-"))
    folder.chmod(0o755)
    (folder / "users.txt").write_text(f'"{direct.username}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"[databases]\n{direct.database} = host={direct.host} port={direct.port or 5432}\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        "pool_mode = transaction\nauth_type = trust\n"
        f"auth_file = {folder / 'users.txt'}\ndefault_pool_size = 4\nmax_client_conn = 200\n"
    )
    for made in folder.iterdir():
        made.chmod(0o644)
    log = (folder / "pgbouncer.log").open("w")
    process = subprocess.Popen(
        _as_unprivileged([binary, str(folder / "pgbouncer.ini")]),
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def answering() -> bool:
        if process.poll() is not None:
            pytest.fail(f"pgbouncer exited: {(folder / 'pgbouncer.log').read_text()}")
        return _answering(port)

    try:
        wait_until(
            answering,
            timeout=10,
            message=lambda: f"pgbouncer did not start: {(folder / 'pgbouncer.log').read_text()}",
        )
        pooled = direct.set(port=port, host="127.0.0.1")
        yield (
            pooled.render_as_string(hide_password=False),
            direct.render_as_string(hide_password=False),
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        shutil.rmtree(folder)


def _environment(database_url: str, direct_url: str | None) -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DATABASE_", "DB_", "ENVIRONMENT"))
    }
    environment |= {"DATABASE_URL": database_url, "DB_USE_NULL_POOL": "true"}
    if direct_url is not None:
        environment["DATABASE_DIRECT_URL"] = direct_url
    return environment


def _omnistack(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "omnistack_core.cli", *arguments]


async def _scalar(url: str, query: str, *arguments: object) -> object:
    import asyncpg  # noqa: PLC0415 - the postgres extra, checked above

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        return await connection.fetchval(query, *arguments)
    finally:
        await connection.close()


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(_omnistack("db", "upgrade"), id="omnistack db upgrade"),
        pytest.param(_omnistack("db", "downgrade", "base"), id="omnistack db downgrade"),
        pytest.param([sys.executable, "-m", "alembic", "upgrade", "head"], id="alembic upgrade"),
    ],
)
def test_migrations_through_the_pooler_without_a_direct_url_are_refused_in_one_line(
    tmp_path: Path, pooler_urls: tuple[str, str], command: list[str]
) -> None:
    pooled, direct = pooler_urls
    write_project(tmp_path, SLOW_REVISIONS)

    result = subprocess.run(
        command,
        cwd=tmp_path,
        env=_environment(pooled, None),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    output = result.stdout + result.stderr
    assert result.returncode != 0  # 1 from omnistack, 255 from alembic's "FAILED:"
    assert output.strip().splitlines() == [output.strip()]
    assert THROUGH_A_POOLER in output
    assert PASSWORD not in output
    assert asyncio.run(_scalar(direct, "SELECT to_regclass('alembic_version')::text")) is None


def test_three_runners_with_the_direct_url_migrate_once_and_leave_no_lock(
    tmp_path: Path, pooler_urls: tuple[str, str]
) -> None:
    pooled, direct = pooler_urls
    write_project(tmp_path, SLOW_REVISIONS)

    runners = [
        subprocess.Popen(
            _omnistack("db", "upgrade"),
            cwd=tmp_path,
            env=_environment(pooled, direct),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [runner.communicate(timeout=120) for runner in runners]

    assert [runner.returncode for runner in runners] == [0, 0, 0], outputs
    applied = [out for out, _ in outputs if "applied: 0001_notes, 0002_tags" in out]
    idle = [out for out, _ in outputs if "applied: nothing, the database was up to date" in out]
    assert (len(applied), len(idle)) == (1, 2), outputs
    assert asyncio.run(_scalar(direct, "SELECT version_num FROM alembic_version")) == "0002_tags"
    left = asyncio.run(
        _scalar(
            direct,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND classid::bigint = $1 AND objid::bigint = $2",
            MIGRATION_LOCK_KEY >> 32,
            MIGRATION_LOCK_KEY & 0xFFFFFFFF,
        )
    )
    assert left == 0


async def _sums_through(url: str, *, null_pool: bool) -> list[tuple[int, object]]:
    """300 requests, 30 at a time, each running a statement with a bound parameter."""
    app = create_app(load_settings(database_url=url, db_use_null_pool=null_pool))

    @app.get("/sum/{number}")
    async def add_one(number: int, session: DbSession) -> dict[str, int]:
        # A bound parameter: asyncpg prepares a statement for it, which is what a
        # transaction pooler loses between transactions unless the engine names it uniquely.
        total = await session.scalar(text("SELECT CAST(:n AS integer) + 1"), {"n": number})
        return {"sum": int(total or 0)}

    async with app_client(app) as client:

        async def call(number: int) -> tuple[int, object]:
            response = await client.get(f"/sum/{number}")
            return response.status_code, response.json().get("sum")

        answers = []
        for start in range(0, 300, 30):
            answers += await asyncio.gather(*(call(n) for n in range(start, start + 30)))
    return answers


async def test_app_traffic_through_the_pooler_with_the_null_pool_has_no_errors(
    pooler_urls: tuple[str, str],
) -> None:
    pooled, _ = pooler_urls

    answers = await _sums_through(pooled, null_pool=True)

    assert answers == [(200, n + 1) for n in range(300)]


async def test_without_the_null_pool_the_pooler_loses_prepared_statements(
    pooler_urls: tuple[str, str],
) -> None:
    # The control: the traffic above reaches the pooler, and the setting is what saves it
    # (measured: 129 of 300 requests failed on "prepared statement ... does not exist").
    pooled, _ = pooler_urls

    answers = await _sums_through(pooled, null_pool=False)

    assert any(status == 500 for status, _ in answers)
