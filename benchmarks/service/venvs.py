"""One virtualenv per target, holding only what that target's image holds.

The repository's dev virtualenv holds far more than any target would in production (rich,
OpenTelemetry, our test tooling…), and some libraries import whatever they find installed:
start-up and memory measured from it are not the image's. So each target gets its own,
built with uv from what that target declares, with the dev virtualenv's interpreter:

- a generated service: its own ``pyproject.toml``, locked (the generated project ships no
  lock) and synced without the dev group, as ``template/docker/Dockerfile.jinja`` does
  (``uv sync --locked --no-dev``; omnistack-core comes from this checkout, which the
  generated pyproject names with ``@ file://…``);
- the FSFT peer: ``benchmarks/peers/fsft/requirements.txt``, the reference template's runtime
  dependencies;
- bare FastAPI: ``fastapi`` and ``uvicorn[standard]``.

Every build compiles the bytecode of what it installs (``UV_COMPILE_BYTECODE=1``), as the
image's build does, since the targets run with ``PYTHONDONTWRITEBYTECODE=1``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.service.targets import TargetError
from tests.template.rendering import REPOSITORY

UV = shutil.which("uv") or "uv"
PYTHON = sys.executable
"""The dev virtualenv's interpreter: every target runs on the same Python."""

PEER_REQUIREMENTS = REPOSITORY / "benchmarks" / "peers" / "fsft" / "requirements.txt"
BARE_REQUIREMENTS = ("fastapi", "uvicorn[standard]")
BUILD_TIMEOUT_SECONDS = 900

KEY_PACKAGES = (
    "omnistack-core",
    "fastapi",
    "starlette",
    "pydantic",
    "sqlalchemy",
    "asyncpg",
    "sqlmodel",
    "psycopg",
    "uvicorn",
    "uvloop",
    "httptools",
    "pyjwt",
    "cryptography",
    "sentry-sdk",
    "rich",
    "opentelemetry-api",
)
"""What bench.md names per target: the stack, and what the dev virtualenv used to add."""


@dataclass(frozen=True)
class Venv:
    """A target's virtualenv and what it holds."""

    path: Path
    packages: tuple[str, ...]
    """``name==version`` of every installed package, as ``uv pip freeze`` prints them."""

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    def versions(self) -> dict[str, str]:
        """Of :data:`KEY_PACKAGES`, the installed ones and their versions."""
        found: dict[str, str] = {}
        for line in self.packages:
            name, separator, version = line.partition("==")
            if not separator:  # "omnistack-core @ file://…": a direct reference
                name, _, version = line.partition(" @ ")
                version = "this checkout"
            name = name.strip().lower().replace("_", "-")
            if name in KEY_PACKAGES:
                found[name] = version.strip()
        return {name: found[name] for name in KEY_PACKAGES if name in found}


def _environment() -> dict[str, str]:
    """The shell's environment for uv: no active virtualenv, bytecode compiled at install."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH"}
    }
    return {**env, "UV_COMPILE_BYTECODE": "1", "UV_PYTHON_DOWNLOADS": "never"}


def _uv(label: str, *arguments: str, cwd: Path | None = None, **extra: str) -> str:
    command = [UV, *arguments]
    try:
        result = subprocess.run(
            command,
            cwd=cwd,
            env={**_environment(), **extra},
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TargetError(f"{label}: building its virtualenv: {' '.join(command)}: {exc}") from exc
    if result.returncode != 0:
        raise TargetError(
            f"{label}: building its virtualenv failed: {' '.join(command)}\n"
            f"{result.stderr[-3000:]}\n"
            "The targets' virtualenvs are installed from PyPI (uv's cache makes repeats fast): "
            "if the error above is a network one, PyPI is not reachable from here (check the "
            "proxy settings, HTTPS_PROXY and SSL_CERT_FILE)."
        )
    return result.stdout


def _freeze(label: str, path: Path) -> Venv:
    listed = _uv(label, "pip", "freeze", "--python", str(path / "bin" / "python"))
    return Venv(path, tuple(sorted(line for line in listed.splitlines() if line.strip())))


def service_venv(label: str, project: Path) -> Venv:
    """The generated project's own virtualenv (``<project>/.venv``), as its image builds it."""
    if not (project / "uv.lock").exists():
        _uv(label, "lock", "--quiet", "--python", PYTHON, cwd=project)
    # --reinstall-package: uv reuses a wheel it built from an older state of this checkout
    # (it rebuilds a local directory only when its pyproject.toml changes).
    _uv(
        label,
        "sync",
        "--locked",
        "--no-dev",
        "--quiet",
        "--python",
        PYTHON,
        "--reinstall-package",
        "omnistack-core",
        cwd=project,
    )
    return _freeze(label, project / ".venv")


def requirements_venv(label: str, path: Path, *requirements: str) -> Venv:
    """A fresh virtualenv at ``path`` with ``requirements`` (``-r file`` allowed) installed."""
    _uv(label, "venv", "--quiet", "--python", PYTHON, str(path))
    _uv(label, "pip", "install", "--quiet", "--python", str(path / "bin" / "python"), *requirements)
    return _freeze(label, path)


def peer_venv(label: str, path: Path) -> Venv:
    return requirements_venv(label, path, "-r", str(PEER_REQUIREMENTS))


def bare_venv(label: str, path: Path) -> Venv:
    return requirements_venv(label, path, *BARE_REQUIREMENTS)
