"""The benchmark's reference apps answer as the template they stand for does.

The FSFT peer reads its settings and makes its engine at import, as the template does, so one
database serves this module and the peer's modules are imported once, after the variables are
set. Its ``main`` module (Sentry, then the app) is imported in a subprocess only: Sentry's
integrations patch FastAPI and SQLAlchemy in the process that initialises it.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from omnistack_core.testing import create_test_database, drop_test_database
from omnistack_core.testing.pytest_plugin import services_required
from omnistack_core.testing.services import DEFAULT_TEST_POSTGRES_URL, ServiceUnavailableError

# The peers run on the bench dependency group (and EmailStr on email-validator, from the email
# extra); the nox sessions that install neither skip this module.
for _module in ("sqlmodel", "psycopg", "jwt", "sentry_sdk", "email_validator"):
    pytest.importorskip(_module, reason="the peers need `uv sync --all-extras` (bench group)")

from benchmarks.peers.bare.main import app as bare_app  # noqa: E402
from benchmarks.peers.fsft import seed  # noqa: E402
from benchmarks.peers.fsft.security import mint_token  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SECRET = "peer-test-secret-at-least-32-bytes-long"


@dataclass
class Peer:
    url: str
    """The ``postgresql+psycopg://`` URL of the peer's database."""
    client: TestClient
    alice: str
    bob: str

    def headers(self, user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(user_id, SECRET)}"}


def run_seed(url: str, users: int) -> subprocess.CompletedProcess[str]:
    """The seed command as the benchmark runs it: from the repository root, by module."""
    command = ["-m", "benchmarks.peers.fsft.seed", "--database-url", url, "--users", str(users)]
    return subprocess.run(
        [sys.executable, *command],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


@pytest.fixture(scope="module")
def peer() -> Iterator[Peer]:
    server = os.environ.get("OMNISTACK_TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL)
    try:
        database = create_test_database(server)
    except ServiceUnavailableError as exc:
        if services_required():
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    url = "postgresql+psycopg://" + database.split("://", 1)[1]
    seeded = run_seed(url, 2)
    assert seeded.returncode == 0, seeded.stderr
    alice, bob = json.loads(seeded.stdout)["user_ids"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PEER_DATABASE_URL", url)
        patch.setenv("PEER_SECRET_KEY", SECRET)
        api = importlib.import_module("benchmarks.peers.fsft.api")
    db = importlib.import_module("benchmarks.peers.fsft.db")
    try:
        with TestClient(api.create_app()) as client:
            yield Peer(url=url, client=client, alice=alice, bob=bob)
    finally:
        db.engine.dispose()
        drop_test_database(server, database)


@pytest.mark.integration
def test_seeding_again_keeps_the_users_it_made_and_adds_the_missing_ones(
    peer: Peer, capsys: pytest.CaptureFixture[str]
) -> None:
    # In process: the fixture already ran the command itself as a subprocess.
    seed.main(["--database-url", peer.url, "--users", "3"])

    ids = json.loads(capsys.readouterr().out)["user_ids"]
    assert ids[:2] == [peer.alice, peer.bob]
    assert len(set(ids)) == 3


@pytest.mark.integration
def test_health_check_is_true(peer: Peer) -> None:
    response = peer.client.get("/api/v1/utils/health-check/")

    assert response.status_code == 200
    assert response.json() is True


@pytest.mark.integration
def test_me_is_the_token_s_user(peer: Peer) -> None:
    response = peer.client.get("/api/v1/users/me", headers=peer.headers(peer.bob))

    assert response.status_code == 200
    assert response.json()["id"] == peer.bob
    assert response.json()["email"] == "bench-1@example.com"
    assert response.json()["is_active"] is True


@pytest.mark.integration
def test_a_token_signed_with_another_key_is_refused_with_403(peer: Peer) -> None:
    forged = mint_token(peer.alice, "another-secret-of-at-least-32-bytes")

    response = peer.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {forged}"})

    assert response.status_code == 403
    assert response.json() == {"detail": "Could not validate credentials"}


@pytest.mark.integration
def test_a_token_for_no_user_is_404(peer: Peer) -> None:
    response = peer.client.get("/api/v1/users/me", headers=peer.headers(str(uuid.uuid4())))

    assert response.status_code == 404


@pytest.mark.integration
def test_items_are_owned_listed_paged_and_guarded_per_user(peer: Peer) -> None:
    alice, bob = peer.headers(peer.alice), peer.headers(peer.bob)
    created = [
        peer.client.post(
            "/api/v1/items/", json={"title": f"a{n}", "description": "d"}, headers=alice
        )
        for n in range(3)
    ]
    bobs = peer.client.post("/api/v1/items/", json={"title": "b0"}, headers=bob)

    assert [response.status_code for response in [*created, bobs]] == [200] * 4
    assert {response.json()["owner_id"] for response in created} == {peer.alice}
    assert bobs.json()["owner_id"] == peer.bob

    listed = peer.client.get("/api/v1/items/", params={"skip": 0, "limit": 100}, headers=alice)
    assert listed.status_code == 200
    assert listed.json()["count"] == 3
    # Newest first, as the template orders them.
    assert [item["title"] for item in listed.json()["data"]] == ["a2", "a1", "a0"]

    page = peer.client.get("/api/v1/items/", params={"skip": 1, "limit": 1}, headers=alice)
    assert page.json()["count"] == 3
    assert [item["title"] for item in page.json()["data"]] == ["a1"]

    own = peer.client.get(f"/api/v1/items/{created[0].json()['id']}", headers=alice)
    assert own.status_code == 200
    assert own.json() == created[0].json()

    others = peer.client.get(f"/api/v1/items/{bobs.json()['id']}", headers=alice)
    assert others.status_code == 400
    assert others.json() == {"detail": "Not enough permissions"}

    missing = peer.client.get(f"/api/v1/items/{uuid.uuid4()}", headers=alice)
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Item not found"}


@pytest.mark.integration
def test_main_starts_sentry_without_tracing_with_the_template_s_integrations_and_serves(
    peer: Peer,
) -> None:
    # Run in this (dev) virtualenv, which holds libraries Sentry would patch if it searched
    # for them (redis, asyncpg, openai, …): the peer names its integrations instead.
    probe = (
        "import json, sentry_sdk\n"
        "from fastapi.testclient import TestClient\n"
        "from benchmarks.peers.fsft.main import app\n"
        "options = sentry_sdk.get_client().options\n"
        "with TestClient(app) as client:\n"
        "    health = client.get('/api/v1/utils/health-check/').json()\n"
        "named = {type(i).identifier for i in options['integrations']}\n"
        "print(json.dumps([options['dsn'], options['traces_sample_rate'], health,\n"
        "                  options['auto_enabling_integrations'], sorted(named)]))\n"
    )
    environment = {**os.environ, "PEER_DATABASE_URL": peer.url, "PEER_SECRET_KEY": SECRET}

    done = subprocess.run(
        [sys.executable, "-c", probe],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    dsn, traces_sample_rate, health, searched, named = json.loads(done.stdout)
    assert [dsn, traces_sample_rate, health, searched] == [None, None, True, False]
    assert {"fastapi", "starlette", "sqlalchemy", "httpx"} <= set(named)
    assert not {"redis", "asyncpg", "openai", "anthropic", "arq"} & set(named)


def test_the_peer_s_requirements_are_the_template_s_runtime_stack_without_cryptography() -> None:
    # What the benchmark installs in the peer's own virtualenv: the stack the peer's modules
    # import, and nothing that would pull cryptography in (the template's lock has none).
    lines = (ROOT / "benchmarks" / "peers" / "fsft" / "requirements.txt").read_text()
    names = {
        re.split(r"[\[<>=!~ ]", line.strip(), maxsplit=1)[0].lower()
        for line in lines.splitlines()
        if line.strip() and not line.startswith("#")
    }

    assert {"fastapi", "sqlmodel", "psycopg", "pyjwt", "sentry-sdk", "email-validator"} <= names
    assert not {"cryptography", "python-jose", "pyjwt[crypto]"} & names


def test_bare_health_is_ok() -> None:
    with TestClient(bare_app) as client:
        response = client.get("/api/v1/public/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
