from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from omnistack_core.cli import main
from omnistack_core.testing import app_client
from tests.auth.auth_apps import auth_app, bearer


def test_dev_token_mints_a_token_the_dev_provider_accepts(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (isolated_environment / ".env").write_text("SECRET_KEY=" + "q" * 40 + "\n")

    status = main(
        ["auth", "dev-token", "--sub", "cli-user", "--role", "admin", "--email", "c@x.io"]
    )
    token = capsys.readouterr().out.strip()

    async def call() -> tuple[int, dict[str, str]]:
        async with app_client(auth_app()) as client:
            response = await client.get("/admin", headers=bearer(token))
            me = await client.get("/me", headers=bearer(token))
        return response.status_code, me.json()

    assert status == 0
    assert asyncio.run(call()) == (200, {"id": "cli-user", "provider": "dev", "email": "c@x.io"})


def test_dev_token_refuses_without_a_secret_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["auth", "dev-token", "--sub", "u"]) == 1
    assert "SECRET_KEY is not set" in capsys.readouterr().err


def test_dev_token_refuses_in_production(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db/app")

    assert main(["auth", "dev-token", "--sub", "u"]) == 1
    assert "refused in production" in capsys.readouterr().err


def test_dev_token_reads_the_variables_under_a_prefix_beside_the_hosts_own(
    isolated_environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # An app of its own, whose ENVIRONMENT means something else, with the modules under OMNI_.
    (isolated_environment / ".env").write_text(
        "ENVIRONMENT=local\nOMNI_ENVIRONMENT=test\nOMNI_SECRET_KEY=" + "p" * 40 + "\n"
    )

    status = main(["auth", "dev-token", "--sub", "prefixed-user", "--env-prefix", "OMNI_"])
    token = capsys.readouterr().out.strip()
    # The server that checks it: the same key, read without a prefix.
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.setenv("SECRET_KEY", "p" * 40)

    async def call() -> int:
        async with app_client(auth_app()) as client:
            return (await client.get("/me", headers=bearer(token))).status_code

    assert status == 0
    assert asyncio.run(call()) == 200


def test_dev_token_names_the_prefixed_key_it_lacks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["auth", "dev-token", "--sub", "u", "--env-prefix", "OMNI_"]) == 1
    assert "OMNI_SECRET_KEY is not set" in capsys.readouterr().err
