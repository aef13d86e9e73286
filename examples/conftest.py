"""What the examples' tests share: the fixtures plugin, a clean environment, logging restored.

The repository's suite (``uv run pytest``) collects ``examples/*/tests`` beside ``tests/``.
Every directory here is a package, so the examples' test modules have distinct names
(``examples.minimal.tests.test_app``, ``examples.saas.tests.test_...``).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["omnistack_core.testing.pytest_plugin"]

# The settings classes whose variables an example may read, by the module holding each.
_SETTINGS_CLASSES = {
    "omnistack_core.settings": "Settings",
    "omnistack_core.auth": "AuthSettings",
    "omnistack_core.billing": "BillingSettings",
    "omnistack_core.ai": "AISettings",
    "omnistack_core.email": "EmailSettings",
    "omnistack_core.jobs": "JobsSettings",
}


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(module) for module in modules)


# The suite's session without extras cannot import the examples, which need their modules.
collect_ignore_glob = [
    *([] if _installed("jwt") else ["minimal/*"]),
    *(
        []
        if _installed("jwt", "stripe", "openai", "anthropic", "resend", "jinja2", "arq")
        else ["saas/*"]
    ),
    *([] if _installed("jwt", "stripe", "alembic", "asyncpg") else ["existing_app/*"]),
]


def _service_variables() -> set[str]:
    names: set[str] = set()
    for module, class_name in _SETTINGS_CLASSES.items():
        try:
            settings_class = getattr(importlib.import_module(module), class_name)
        except ImportError:  # that module's extra is not installed: nothing of it to unset
            continue
        names.update(field.upper() for field in settings_class.model_fields)
    return names


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Start each test in an empty directory with none of the services' variables set.

    No ``.env`` is read and SQLite files land there, whatever the developer's shell exports.
    """
    for name in _service_variables():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def restored_logging() -> Iterator[None]:
    """create_app configures the root logger; each test gets back the logging it started with."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
