"""``omnistack dev`` says in one block or one line why it cannot serve."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from omnistack_core.testing import wait_until
from tests.db.migration_project import write_project

pytest.importorskip("arq", reason="needs the jobs extra")
pytest.importorskip("alembic", reason="needs the migrations extra")

SERVICE = """
from omnistack_core import create_app
from omnistack_core.jobs import JobsModule

app = create_app(modules=[JobsModule()])
"""


@pytest.fixture
def service(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[tool.omnistack]\napp = "svc:app"\n')
    (tmp_path / "svc.py").write_text(SERVICE)
    write_project(tmp_path, {})
    return tmp_path


def dev(directory: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("ENVIRONMENT", "DATABASE_URL", "REDIS_URL", "LOG_LEVEL", "LOG_FORMAT")
    }
    return subprocess.run(
        [sys.executable, "-m", "omnistack_core.cli", "dev", "--no-reload"],
        cwd=directory,
        env=environment | {"PORT": str(free_port())} | variables,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_bad_setting_is_one_block_before_anything_starts(service: Path) -> None:
    result = dev(service, JOBS_MAX_CONCURRENCY="none", DB_POOL_SIZE="0")

    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        "Invalid configuration (2 problems):",
        (
            "  - JOBS_MAX_CONCURRENCY: Input should be a valid integer, unable to parse string "
            "as an integer"
        ),
        "  - DB_POOL_SIZE: Input should be greater than or equal to 1",
        "Set these variables (environment or .env); `omnistack check-config` checks.",
    ]


def test_a_database_that_does_not_exist_is_one_line_naming_where_it_looked(
    service: Path, postgres_url: str
) -> None:
    missing = make_url(postgres_url).set(database=f"absent_{uuid.uuid4().hex[:8]}", password="pw")
    url = missing.render_as_string(hide_password=False)

    result = dev(service, DATABASE_URL=url)

    [line] = result.stderr.splitlines()
    assert result.returncode == 1
    assert line.startswith(f"error: cannot reach the database {missing.database} on ")
    assert f"{missing.host}:{missing.port}" in line
    assert "the database does not exist" in line
    assert "check DATABASE_URL" in line
    assert ":pw@" not in line
    assert "Traceback" not in result.stdout


def test_a_redis_that_does_not_answer_leaves_the_service_up_and_not_ready(service: Path) -> None:
    port = free_port()
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("ENVIRONMENT", "DATABASE_URL", "REDIS_URL", "LOG_LEVEL", "LOG_FORMAT")
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "omnistack_core.cli", "dev", "--no-reload"],
        cwd=service,
        env=environment | {"PORT": str(port), "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def readiness() -> httpx.Response | None:
        assert server.poll() is None, "the service exited"
        try:
            return httpx.get(f"http://127.0.0.1:{port}/api/v1/public/health/ready")
        except httpx.TransportError:
            return None

    try:
        ready = wait_until(
            readiness, timeout=60, interval=0.2, message="the service never answered"
        )
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)

    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"]["status"] == "failed"
    assert "Start-up failed" not in output
    assert "Traceback" not in output
