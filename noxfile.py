"""The one entry point for checks: ``uvx nox`` runs them all, ``uvx nox -s tests`` one."""

from __future__ import annotations

import tempfile
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "typecheck", "tests", "tests_no_extras", "build"]

PYTHONS = ["3.11", "3.12", "3.13"]


def sync(session: nox.Session, *args: str) -> None:
    """Install the locked dependencies into the session's virtualenv."""
    session.run_install(
        "uv",
        "sync",
        "--locked",
        "--no-default-groups",
        *args,
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (lint and format) and the import-direction contracts."""
    sync(session, "--all-extras", "--group", "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package and the typed usage file."""
    sync(session, "--all-extras", "--group", "lint", "--group", "test")
    session.run("mypy")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole suite with every extra installed."""
    sync(session, "--all-extras", "--group", "test")
    session.run("pytest", *session.posargs)


@nox.session
def tests_no_extras(session: nox.Session) -> None:
    """The base install alone: what needs no server and no extra must work without them."""
    sync(session, "--group", "test")
    session.run("pytest", "-m", "not integration", *session.posargs)


@nox.session
def build(session: nox.Session) -> None:
    """Build sdist and wheel, check them, and import the wheel in a fresh virtualenv."""
    session.install("twine")
    with tempfile.TemporaryDirectory() as directory:
        dist = Path(directory) / "dist"
        session.run("uv", "build", "--out-dir", str(dist), external=True)
        files = sorted(str(path) for path in dist.glob("*") if path.suffix in (".whl", ".gz"))
        session.run("twine", "check", "--strict", *files)
        wheel = next(path for path in files if path.endswith(".whl"))
        venv = Path(directory) / "venv"
        session.run("uv", "venv", "--quiet", str(venv), external=True)
        python = str(venv / "bin" / "python")
        session.run("uv", "pip", "install", "--quiet", "--python", python, wheel, external=True)
        session.run(
            python,
            "-c",
            "import omnistack_core, sys; omnistack_core.create_app(); "
            "print('imported omnistack-core', omnistack_core.__version__)",
            external=True,
        )
