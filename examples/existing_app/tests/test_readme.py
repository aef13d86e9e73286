"""The README's settings start the app, and its dev-token command signs in to it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from dotenv import dotenv_values

from examples.existing_app.main import create_app
from omnistack_core import Installation
from omnistack_core.billing import BillingSettings
from omnistack_core.cli import main as omnistack
from omnistack_core.testing import app_client

README = Path(__file__).resolve().parents[1] / "README.md"
FILLED = "0123456789abcdef0123456789abcdef"


def settings_block() -> str:
    match = re.search(r"<!-- settings -->\n```bash\n(.+?)\n```", README.read_text(), re.DOTALL)
    assert match is not None, "the README has no settings block"
    return match.group(1)


def dev_token_command() -> list[str]:
    match = re.search(r'TOKEN="\$\(uv run omnistack (.+?)\)"', README.read_text(), re.DOTALL)
    assert match is not None, "the README mints no token"
    return match.group(1).replace("\\\n", " ").split()


async def test_the_readme_settings_start_the_app_and_its_token_signs_in(
    notes_database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(settings_block().replace("...", FILLED))
    for name, value in dotenv_values(env_file).items():
        monkeypatch.setenv(name, value or "")
    monkeypatch.setenv("DATABASE_URL", notes_database)  # this run's database, not `notes`
    command = dev_token_command()
    command[command.index("examples/existing_app/.env")] = str(env_file)

    minted = omnistack(command)
    token = capsys.readouterr().out.strip()
    app = create_app()
    async with app_client(app) as client:
        listed = await client.get("/notes", headers={"Authorization": f"Bearer {token}"})
        ready = await client.get("/ready")

    assert minted == 0
    assert listed.status_code == 200, listed.text
    # Development tokens need no JWKS: the app's database is the one check.
    assert (ready.status_code, set(ready.json()["checks"])) == (200, {"database"})
    settings = Installation.of(app).settings
    assert isinstance(settings, BillingSettings)
    assert settings.environment == "development"
    assert {name: plan.price for name, plan in settings.billing_plans.items()} == {
        "pro": f"price_{FILLED}"
    }
