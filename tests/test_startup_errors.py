"""A start that cannot happen says why in a few lines, wherever the service starts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

MISCONFIGURED = {"ENVIRONMENT": "production", "SECRET_KEY": "short"}
"""Production with a short key and no database: two problems."""

SERVICE = """
from omnistack_core import create_app

app = create_app()
"""

FAILING_LIFESPAN = """
from contextlib import asynccontextmanager

from omnistack_core import ConfigProblem, ConfigurationError, create_app


@asynccontextmanager
async def lifespan(app):
    raise ConfigurationError([ConfigProblem("WAREHOUSE_URL", "required to reach the warehouse")])
    yield


app = create_app(lifespan=lifespan)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(
    directory: Path, command: list[str], variables: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("ENVIRONMENT", "LOG_FORMAT", "LOG_LEVEL", "SECRET_KEY", "DATABASE_URL")
    }
    return subprocess.run(
        command,
        cwd=directory,
        env=environment | variables,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def uvicorn(
    directory: Path, source: str, variables: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    (directory / "svc.py").write_text(textwrap.dedent(source))
    command = [sys.executable, "-m", "uvicorn", "svc:app", "--port", str(free_port())]
    return run(directory, command, variables)


def lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return (result.stdout + result.stderr).splitlines()


def test_under_uvicorn_a_configuration_error_is_one_block_without_a_traceback(
    tmp_path: Path,
) -> None:
    result = uvicorn(tmp_path, SERVICE, {**MISCONFIGURED, "LOG_FORMAT": "text"})

    output = lines(result)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert output[0] == "Invalid configuration (2 problems):"
    assert output[1].startswith("  - SECRET_KEY: must be at least 32 characters")
    assert output[2].startswith("  - DATABASE_URL: required when ENVIRONMENT=production")
    assert len(output) <= 15


def test_in_json_mode_it_is_one_json_line_with_the_problems(tmp_path: Path) -> None:
    result = uvicorn(tmp_path, SERVICE, MISCONFIGURED)

    [line] = lines(result)
    record = json.loads(line)
    assert result.returncode != 0
    assert record["level"] == "CRITICAL"
    assert record["message"] == "Invalid configuration (2 problems)"
    assert [problem["variable"] for problem in record["problems"]] == [
        "SECRET_KEY",
        "DATABASE_URL",
    ]
    assert record["environment"] == "production"
    assert "short" not in line


def test_at_debug_level_the_traceback_comes_too(tmp_path: Path) -> None:
    result = uvicorn(
        tmp_path, SERVICE, {**MISCONFIGURED, "LOG_FORMAT": "text", "LOG_LEVEL": "DEBUG"}
    )

    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "Invalid configuration (2 problems):" in result.stderr


def test_a_configuration_error_in_the_lifespan_is_reported_once_and_start_up_fails(
    tmp_path: Path,
) -> None:
    result = uvicorn(tmp_path, FAILING_LIFESPAN, {"LOG_FORMAT": "text"})

    output = lines(result)
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert output.count("  - WAREHOUSE_URL: required to reach the warehouse") == 1
    assert any("Application startup failed" in line for line in output)
    assert len(output) <= 15
    assert all(len(line) < 300 for line in output)


def test_a_missing_extra_names_the_install_command_without_a_traceback(tmp_path: Path) -> None:
    source = """
    from omnistack_core import create_app

    app = create_app()
    """
    (tmp_path / "svc.py").write_text(textwrap.dedent(source))
    # Metrics asked for while prometheus_client cannot be found: the extra is "not installed".
    hide = (
        "import importlib.util, runpy, sys\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda name, *a: None if name == 'prometheus_client' "
        "else real(name, *a)\n"
        "sys.argv = ['uvicorn', 'svc:app', '--port', '0']\n"
        "runpy.run_module('uvicorn', run_name='__main__')\n"
    )
    result = run(
        tmp_path, [sys.executable, "-c", hide], {"METRICS_ENABLED": "true", "LOG_FORMAT": "text"}
    )

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "pip install 'omnistack-core[observability]'" in result.stderr
    assert len(lines(result)) <= 15


def test_the_migration_command_lists_the_problems_without_a_traceback(tmp_path: Path) -> None:
    pytest.importorskip("alembic", reason="the migration command needs the migrations extra")
    command = [sys.executable, "-m", "omnistack_core.cli", "db", "upgrade"]
    result = run(tmp_path, command, {**MISCONFIGURED, "LOG_FORMAT": "text"})

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Invalid configuration (2 problems):" in result.stderr
    assert len(lines(result)) <= 15


def test_in_json_mode_the_migration_command_prints_one_json_line(tmp_path: Path) -> None:
    pytest.importorskip("alembic", reason="the migration command needs the migrations extra")
    command = [sys.executable, "-m", "omnistack_core.cli", "db", "upgrade"]
    result = run(tmp_path, command, MISCONFIGURED)

    [line] = lines(result)
    assert result.returncode == 1
    assert json.loads(line)["message"] == "Invalid configuration (2 problems)"
