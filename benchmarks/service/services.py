"""The four targets: the generated default and every-module services, bare FastAPI and FSFT.

The services are generated from this checkout (the working tree, uncommitted changes
included) with the template's test answer sets, and run from their own virtualenv
(:mod:`benchmarks.service.venvs`) with their directory as working directory and
``PYTHONPATH``, with the environment their image sets (``template/docker/Dockerfile.jinja``):
production, JSON logs, no bytecode written (the image compiles it at build; the virtualenvs'
builds and :func:`compile_bytecode` do here). Each peer runs from its own virtualenv too,
with the repository root on ``PYTHONPATH`` for its code.
"""

from __future__ import annotations

import compileall
import importlib
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.service.database import with_driver
from benchmarks.service.jwks import HttpsIssuer, user_ids
from benchmarks.service.targets import Route, Target, TargetError
from benchmarks.service.venvs import Venv
from tests.template.rendering import ANSWER_SETS, REPOSITORY, render, snapshot
from tests.template.test_generated_project import PRODUCTION_VALUES, project_environment

REDIS_URL = "redis://127.0.0.1:6379/13"
SECRET_KEY = "bench-secret-key-" + "k" * 32
PEER_SECRET_KEY = "bench-peer-secret-" + "p" * 32

SERVICES = {"default": "defaults", "all": "everything-supabase"}
"""Our targets' names and the answer sets they are generated with."""

LABELS = {
    "bare": "bare FastAPI",
    "fsft": "FSFT peer",
    "default": "OmniStack default",
    "all": "OmniStack every module",
}

ITEM_BODY = json.dumps({"name": "bench item"})
PEER_ITEM_BODY = json.dumps({"title": "bench item", "description": "written by the benchmark"})


def _base_env(venv: Venv) -> dict[str, str]:
    """The shell's environment without the service's settings or anyone's PYTHONPATH, with
    ``venv``'s scripts first on ``PATH``, as the image puts its virtualenv's."""
    env = project_environment()
    env.pop("PYTHONPATH", None)
    path = os.pathsep.join([str(venv.bin), env.get("PATH", os.defpath)])
    return {**env, "PATH": path, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def generate(workspace: Path) -> dict[str, Path]:
    """Render each service of :data:`SERVICES` from this working tree."""
    template = snapshot(workspace / "template")
    projects = {}
    for name, answer_set in SERVICES.items():
        answers = {**ANSWER_SETS[answer_set], "omnistack_core_version": f"@ {REPOSITORY.as_uri()}"}
        project = render(template, workspace / name, answers)
        # The image holds no .env (only app/, migrations/, scripts/, alembic.ini): settings
        # come from the environment alone.
        (project / ".env").unlink(missing_ok=True)
        projects[name] = project
    return projects


def compile_bytecode(*directories: Path) -> None:
    """Compile what the targets import from these directories, as the image's build does."""
    for directory in directories:
        compileall.compile_dir(directory, quiet=1, workers=0)


def service_target(
    name: str, project: Path, database_url: str, issuer: HttpsIssuer, users: int, *, venv: Venv
) -> Target:
    """A generated service under ``omnistack serve`` (from ``venv``) with production settings."""
    env = {
        **_base_env(venv),
        **PRODUCTION_VALUES,
        "PYTHONPATH": str(project),
        "ENVIRONMENT": "production",
        "SERVICE_NAME": f"bench-{name}",
        "SHUTDOWN_GRACE_SECONDS": "5",
        "LOG_FORMAT": "json",
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "AUTH_PROVIDER": "supabase",
        "SUPABASE_PROJECT_URL": issuer.url,
        "SSL_CERT_FILE": str(issuer.certificate),
        "WEB_CONCURRENCY": "1",
    }
    tokens = tuple(issuer.token(sub) for sub in user_ids(name, users))
    return Target(
        name=name,
        label=LABELS[name],
        command=[str(venv.bin / "omnistack"), "serve", "--host", "127.0.0.1"],
        cwd=project,
        env=env,
        ready_path="/api/v1/public/health/ready",
        database=database_url,
        routes={
            "liveness": Route("GET", "/api/v1/public/health"),
            "me": Route("GET", "/api/v1/me", tokens=tokens),
            "create": Route("POST", "/api/v1/items", ITEM_BODY, tokens=tokens),
        },
    )


def migrate(target: Target, venv: Venv) -> None:
    """``omnistack db upgrade`` on the target's database, as a deploy's release step does."""
    result = subprocess.run(
        [str(venv.bin / "omnistack"), "db", "upgrade"],
        cwd=target.cwd,
        env=target.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise TargetError(f"{target.label}: omnistack db upgrade failed:\n{result.stderr[-3000:]}")


def bare_target(venv: Venv) -> Target:
    return Target(
        name="bare",
        label=LABELS["bare"],
        command=[str(venv.bin / "uvicorn"), "benchmarks.peers.bare.main:app", *_UVICORN],
        cwd=REPOSITORY,
        env={**_base_env(venv), "PYTHONPATH": str(REPOSITORY)},
        ready_path="/api/v1/public/health",
        routes={"liveness": Route("GET", "/api/v1/public/health")},
    )


# uvicorn's defaults otherwise, access log included, as `fastapi run` in FSFT's image.
_UVICORN = ["--host", "127.0.0.1", "--port", "{port}"]


def _peer_token_minter() -> Callable[[Any, str], str]:
    security = importlib.import_module("benchmarks.peers.fsft.security")
    mint: Callable[[Any, str], str] = security.mint_token
    return mint


def peer_target(database_url: str, users: int, venv: Venv) -> Target:
    """The FSFT peer, its users seeded (``benchmarks.peers.fsft.seed``) and their tokens minted.

    The seed runs in the peer's virtualenv; the tokens are minted here, with the same PyJWT
    call the peer checks them with.
    """
    url = with_driver(database_url, "psycopg")
    env = {
        **_base_env(venv),
        "PYTHONPATH": str(REPOSITORY),
        "PEER_DATABASE_URL": url,
        "PEER_SECRET_KEY": PEER_SECRET_KEY,
    }
    seeded = _seed_peer(venv, url, users, env)
    mint = _peer_token_minter()
    tokens = tuple(mint(user_id, PEER_SECRET_KEY) for user_id in seeded)
    return Target(
        name="fsft",
        label=LABELS["fsft"],
        command=[str(venv.bin / "uvicorn"), "benchmarks.peers.fsft.main:app", *_UVICORN],
        cwd=REPOSITORY,
        env=env,
        ready_path="/api/v1/utils/health-check/",
        database=database_url,
        routes={
            "liveness": Route("GET", "/api/v1/utils/health-check/"),
            "me": Route("GET", "/api/v1/users/me", tokens=tokens),
            "create": Route("POST", "/api/v1/items/", PEER_ITEM_BODY, tokens=tokens),
        },
    )


PEER_SEED = ["-m", "benchmarks.peers.fsft.seed"]


def _seed_peer(venv: Venv, url: str, users: int, env: dict[str, str]) -> list[Any]:
    result = subprocess.run(
        [str(venv.bin / "python"), *PEER_SEED, "--database-url", url, "--users", str(users)],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise TargetError(f"FSFT peer: its seed failed:\n{result.stderr[-3000:]}")
    user_ids: list[Any] = json.loads(result.stdout.strip().splitlines()[-1])["user_ids"]
    return user_ids
