"""The one entry point for checks: ``uvx nox`` runs them all, ``uvx nox -s tests`` one."""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "typecheck", "tests", "tests_no_extras", "docs", "release-check"]

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
    """mypy --strict on the package, the release scripts and the typed usage file."""
    sync(session, "--all-extras", "--group", "lint", "--group", "test")
    session.run("mypy")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole suite with every extra installed."""
    sync(session, "--all-extras", "--group", "test")
    session.run("pytest", *session.posargs)


@nox.session
def examples(session: nox.Session) -> None:
    """The examples' tests alone (``tests`` runs them too): each runs as its README says."""
    sync(session, "--all-extras", "--group", "test")
    session.run("pytest", "examples", *session.posargs)


@nox.session
def tests_no_extras(session: nox.Session) -> None:
    """The base install alone: what needs no server and no extra must work without them."""
    sync(session, "--group", "test")
    session.run("pytest", "-m", "not integration", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, built as tests/test_docs.py builds it: every warning fails."""
    # The docs group alone: mkdocstrings reads the package's source, it does not import it.
    sync(session, "--only-group", "docs")
    session.run("mkdocs", "build", "--strict", *session.posargs)


@nox.session(name="release-check")
def release_check(session: nox.Session) -> None:
    """Build sdist and wheel as a release does, then check them: twine, contents, imports.

    Leaves them in dist/ (emptied first), where the release workflow picks them up. Arguments
    go to scripts/check_dist.py: ``nox -s release-check -- --expect-version 1.2.0``.
    """
    sync(session, "--only-group", "release")
    dist = Path("dist")
    shutil.rmtree(dist, ignore_errors=True)
    session.run("uv", "build", "--out-dir", str(dist), external=True)
    files = sorted(str(path) for pattern in ("*.whl", "*.tar.gz") for path in dist.glob(pattern))
    session.run("twine", "check", "--strict", *files)
    session.run("python", "scripts/check_dist.py", str(dist), "--imports", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Issue 20's table: the generated services against bare FastAPI and the FSFT peer.

    Every target runs from its own virtualenv (built with uv in the run; needs PyPI or uv's
    cache); this one runs only the harness. ``nox -s bench`` is the short check (under five
    minutes on two cores); ``nox -s bench -- --full`` the release table. Needs PostgreSQL,
    Redis (database 13 is flushed) and wrk; writes bench-results/. ``benchmarks/README.md``
    says how to read it.
    """
    sync(session, "--all-extras", "--group", "bench", "--group", "template", "--group", "test")
    session.run("python", "-m", "benchmarks.service", *session.posargs)
