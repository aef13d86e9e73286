from __future__ import annotations

from pathlib import Path

import pytest

from omnistack_core.settings import Settings

pytest_plugins = ["omnistack_core.testing.pytest_plugin", "pytester"]


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Each test starts in an empty directory (no .env, SQLite files land there) with none of
    the service's variables set, whatever the developer's shell exports."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path
