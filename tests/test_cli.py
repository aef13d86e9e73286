from __future__ import annotations

import argparse
import importlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from omnistack_core import __version__
from omnistack_core.cli import COMMANDS, GROUPS, main

STRIPE_KEY = "sk_live_never_printed_0123456789"
DB_PASSWORD = "db-password-never-printed"


def test_check_config_summarises_a_valid_configuration_without_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 48)
    monkeypatch.setenv("DATABASE_URL", f"postgres://app:{DB_PASSWORD}@db:5432/app?sslmode=require")
    monkeypatch.setenv("DB_USE_NULL_POOL", "true")
    monkeypatch.setenv("METRICS_TOKEN", STRIPE_KEY)

    status = main(["check-config"])

    output = capsys.readouterr().out
    assert status == 0
    assert "environment  production" in output
    assert "postgresql+asyncpg://app:***@db:5432/app?ssl=require" in output
    assert "DB_USE_NULL_POOL" in output
    assert "modules      no app found" in output
    assert DB_PASSWORD not in output
    assert STRIPE_KEY not in output
    assert "s" * 48 not in output


def test_check_config_lists_every_problem_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "tiny-secret")
    monkeypatch.setenv("DB_POOL_SIZE", "many")

    status = main(["check-config"])

    errors = capsys.readouterr().err
    assert status == 1
    assert "3 problems" in errors
    assert errors.count("\n") <= 15
    for variable in ("SECRET_KEY", "DATABASE_URL", "DB_POOL_SIZE"):
        assert f"  - {variable}: " in errors
    assert "tiny-secret" not in errors


def test_check_config_reads_the_env_file_it_is_given(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (isolated_environment / "staging.env").write_text("ENVIRONMENT=staging\n")

    status = main(["check-config", "--env-file", "staging.env"])

    assert status == 1
    assert "ENVIRONMENT=staging" in capsys.readouterr().err


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "check-config" in capsys.readouterr().out


def test_the_console_script_is_installed_and_reports_its_version() -> None:
    executable = shutil.which("omnistack")
    assert executable is not None

    result = subprocess.run(
        [executable, "--version"], capture_output=True, text=True, check=True, env=dict(os.environ)
    )

    assert result.stdout.strip() == f"omnistack-core {__version__}"


def test_worker_check_reports_a_redis_that_does_not_answer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("arq", reason="needs the jobs extra")
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")

    status = main(["worker-check"])

    assert status == 1
    assert capsys.readouterr().err.startswith("unhealthy: Redis does not answer")


def test_the_command_table_names_the_group_adding_each_command() -> None:
    for group in GROUPS:
        parser = argparse.ArgumentParser()
        commands = parser.add_subparsers(dest="command")
        importlib.import_module(f"omnistack_core.cli.{group}").add_commands(commands)
        for command in commands.choices:
            assert COMMANDS[command] == group
    assert set(COMMANDS.values()) == set(GROUPS)


def test_serve_imports_no_other_command_group() -> None:
    probe = (
        "import sys\n"
        "from omnistack_core.cli import _parser\n"
        "_parser('serve')\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('omnistack_core.cli.'))))\n"
        "print('sqlalchemy' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )

    groups, sqlalchemy = result.stdout.split("\n")[:2]
    assert "omnistack_core.cli.serve" in groups.split()
    assert not {f"omnistack_core.cli.{group}" for group in GROUPS if group != "serve"} & set(
        groups.split()
    )
    assert sqlalchemy == "False"


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])

    output = capsys.readouterr().out
    for command in COMMANDS:
        assert command in output
