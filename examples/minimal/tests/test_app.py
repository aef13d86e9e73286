"""The minimal example: its routes in-process, real Supabase-shaped tokens, its README as run."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from omnistack_core.auth import mint_dev_token, users
from omnistack_core.testing import app_client
from omnistack_core.testing.issuer import LocalIssuer
from omnistack_core.testing.pytest_plugin import services_required

EXAMPLE = Path(__file__).resolve().parents[1]
SECRET_KEY = "minimal-example-tests-secret-key-0123456789"


def load_app(monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    """``app.py``'s app, built from the test's environment as uvicorn would build it.

    The module reads its settings when imported, so each test imports it afresh (the module
    imported before comes back afterwards).
    """
    monkeypatch.delitem(sys.modules, "examples.minimal.app", raising=False)
    app: FastAPI = importlib.import_module("examples.minimal.app").app
    return app


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FastAPI:
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/minimal.db")
    return load_app(monkeypatch)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_health_answers_without_a_token(app: FastAPI) -> None:
    async with app_client(app) as client:
        live = await client.get("/api/v1/public/health")
        ready = await client.get("/api/v1/public/health/ready")

    assert live.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"]["status"] == "ok"


async def test_the_public_hello_greets_strangers_and_signed_in_callers(app: FastAPI) -> None:
    token = mint_dev_token(SECRET_KEY, "user-1", email="ada@example.com")

    async with app_client(app) as client:
        stranger = await client.get("/api/v1/public/hello")
        known = await client.get("/api/v1/public/hello", headers=bearer(token))
        forged = await client.get("/api/v1/public/hello", headers=bearer("not-a-token"))

    assert stranger.json() == {"message": "Hello, stranger.", "user_id": None}
    assert known.json() == {"message": "Hello again, ada@example.com.", "user_id": "user-1"}
    # Optional sign-in still refuses a bad token rather than treating it as anonymous.
    assert forged.status_code == 401


async def test_hello_greets_the_signed_in_user_and_records_them(app: FastAPI) -> None:
    token = mint_dev_token(SECRET_KEY, "user-1", email="ada@example.com")

    async with app_client(app) as client:
        response = await client.get("/api/v1/hello", headers=bearer(token))
        async with app.state.database.session() as session:
            recorded = (await session.execute(select(users.c.id, users.c.email))).all()

    assert response.status_code == 200
    assert response.json() == {"message": "Hello, ada@example.com.", "user_id": "user-1"}
    assert [tuple(row) for row in recorded] == [("user-1", "ada@example.com")]


async def test_hello_without_a_token_is_a_401_problem(app: FastAPI) -> None:
    async with app_client(app) as client:
        response = await client.get("/api/v1/hello")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_a_token_signed_with_another_key_is_refused(app: FastAPI) -> None:
    token = mint_dev_token("another-secret-key-of-32-characters-at-least", "user-1")

    async with app_client(app) as client:
        response = await client.get("/api/v1/hello", headers=bearer(token))

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_supabase_sign_in_needs_only_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, local_issuer: LocalIssuer
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/supabase.db")
    monkeypatch.setenv("AUTH_PROVIDER", "supabase")
    monkeypatch.setenv("SUPABASE_PROJECT_URL", local_issuer.url)
    app = load_app(monkeypatch)
    supabase_token = local_issuer.supabase_token("user-7", email="grace@example.com")

    async with app_client(app) as client:
        supabase = await client.get("/api/v1/hello", headers=bearer(supabase_token))
        dev = await client.get(
            "/api/v1/hello", headers=bearer(mint_dev_token(SECRET_KEY, "user-7"))
        )

    assert supabase.json() == {"message": "Hello, grace@example.com.", "user_id": "user-7"}
    assert dev.status_code == 401


def readme_block(marker: str) -> str:
    """The fenced block after ``<!-- marker -->`` in the example's README."""
    readme = (EXAMPLE / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\n```\w+\n(.+?)\n```", readme, flags=re.DOTALL)
    assert match is not None, f"README.md has no {marker} block"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def json_values(text: str) -> list[Any]:
    """The JSON values printed one after another (curl adds no newline after a body)."""
    decoder = json.JSONDecoder()
    values, position = [], 0
    while (position := _skip_space(text, position)) < len(text):
        value, position = decoder.raw_decode(text, position)
        values.append(value)
    return values


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def test_the_readme_commands_serve_and_answer_as_shown(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        reason = "the README's commands use curl, which is not installed"
        if services_required():
            pytest.fail(reason)
        pytest.skip(reason)
    # The README's commands, in a copy of the example (they write .env and dev.db there),
    # with this environment's tools for `uv run` and a free port for 8000.
    (tmp_path / "examples" / "minimal").mkdir(parents=True)
    shutil.copy(EXAMPLE / "app.py", tmp_path / "examples" / "minimal" / "app.py")
    port = free_port()

    def as_here(commands: str) -> str:
        return commands.replace("uv run ", "").replace("8000", str(port))

    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    server = subprocess.Popen(
        ["bash", "-c", as_here(readme_block("serve"))],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # bash and uvicorn stop together
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v1/public/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        tried = subprocess.run(
            ["bash", "-c", as_here(readme_block("try"))],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        log, _ = server.communicate(timeout=60)

    assert tried.returncode == 0, tried.stderr + log
    answers = json_values(tried.stdout)
    shown = json_values(readme_block("try-output"))
    assert len(answers) == len(shown), tried.stdout
    # Request ids are fresh for every request; the rest is exactly what the README shows.
    request_id = answers[-1].pop("request_id")
    shown[-1].pop("request_id")
    assert answers == shown
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert request_id in log
