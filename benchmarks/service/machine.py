"""What a table was measured on: the machine, the interpreter, the packages, the commit."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.service.database import SERVER_URL, with_driver
from benchmarks.service.load import WRK

PACKAGES = (
    "omnistack-core",
    "fastapi",
    "starlette",
    "pydantic",
    "sqlalchemy",
    "asyncpg",
    "uvicorn",
    "uvloop",
    "httptools",
    "pyjwt",
    "cryptography",
    "redis",
    "sqlmodel",
    "psycopg",
    "sentry-sdk",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _first_line(*command: str, cwd: Path | None = None) -> str:
    """The first line a command prints (wrk prints its version and exits 1), or ""."""
    try:
        result = subprocess.run(
            list(command), capture_output=True, text=True, timeout=10, check=False, cwd=cwd
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (result.stdout + result.stderr).strip().splitlines()
    return lines[0] if lines else ""


def _postgres_version() -> str:
    try:
        with psycopg.connect(with_driver(SERVER_URL, ""), autocommit=True) as connection:
            row = connection.execute("SHOW server_version").fetchone()
    except psycopg.Error:
        return "unknown"
    return str(row[0]) if row else "unknown"


def describe(repository: Path) -> dict[str, Any]:
    """The machine and software of this run."""
    commit = _first_line("git", "rev-parse", "HEAD", cwd=repository)
    dirty = _first_line("git", "status", "--porcelain", "--untracked-files=no", cwd=repository)
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": {package: _version(package) for package in PACKAGES},
        "postgresql": _postgres_version(),
        "wrk": _first_line(WRK, "--version"),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
    }
