"""Generate a service from the template the way users do, then run it the way they would.

For each answer set: the project installs with this checkout's omnistack-core, passes its own
ruff, mypy and pytest, migrates PostgreSQL up, down and up again with no drift, serves health,
readiness, metrics and ``/api/v1/me`` under uvicorn, and its Dockerfile and workflows lint
clean.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dotenv import dotenv_values
from redis import Redis

from omnistack_core.ai import AISettings
from omnistack_core.auth import AuthSettings
from omnistack_core.billing import BillingSettings
from omnistack_core.testing import create_test_database, drop_test_database, wait_until
from omnistack_core.testing.issuer import LocalIssuer
from omnistack_core.testing.pytest_plugin import services_required
from omnistack_core.testing.services import DEFAULT_TEST_POSTGRES_URL
from tests.template.rendering import ANSWER_SETS, REPOSITORY, render, snapshot

pytestmark = pytest.mark.integration

UV = shutil.which("uv") or "uv"
# Markers of Jinja left unrendered; GitHub's ${{ }} expressions are meant to be there.
JINJA_LEFTOVER = re.compile(r"(?<!\$)\{\{|\{%|%\}|\{#|#\}")
# What running the project leaves beside the generated files.
WORK_FILES = {".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__", "dev.db"}
# Jinja meant for later: the service's own email templates; and Prometheus' and Grafana's own
# {{ }} templates in alert annotations and legends.
JINJA_FILES = {"emails", "monitoring"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The service's own variables never leak in from the test run; nor does our virtualenv.
_NOT_INHERITED = {
    name.upper()
    for settings in (AuthSettings, BillingSettings, AISettings)
    for name in settings.model_fields
} | {
    "VIRTUAL_ENV",
    "UV_PROJECT_ENVIRONMENT",
    "PROMETHEUS_MULTIPROC_DIR",
}


def project_environment(**extra: str) -> dict[str, str]:
    """The environment a developer's shell gives, with the service's settings taken out."""
    base = {key: value for key, value in os.environ.items() if key not in _NOT_INHERITED}
    return {**base, **extra}


def run(project: Path, *command: str, **env: str) -> subprocess.CompletedProcess[str]:
    result = attempt(project, *command, **env)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="module", params=list(ANSWER_SETS))
def project(
    request: pytest.FixtureRequest, template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A generated project, installed with this checkout's omnistack-core."""
    answers = {
        **ANSWER_SETS[request.param],
        "omnistack_core_version": f"@ {REPOSITORY.as_uri()}",
    }
    destination = render(template, tmp_path_factory.mktemp(request.param) / "service", answers)
    # Rebuilt from this checkout each time: uv would reuse a wheel built from an older state
    # of it (it rebuilds a local directory only when its pyproject.toml changes).
    run(destination, UV, "sync", "--quiet", "--reinstall-package", "omnistack-core")
    return destination


@pytest.fixture(scope="module")
def database(project: Path) -> Iterator[str]:
    """A fresh PostgreSQL database for the project (skips or fails like postgres_url)."""
    server = os.environ.get("OMNISTACK_TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL)
    try:
        url = create_test_database(server)
    except Exception as exc:  # noqa: BLE001 - any reason the server is unusable
        if services_required():
            pytest.fail(f"PostgreSQL is required: {exc}")
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    yield url
    drop_test_database(server, url)


def test_the_project_passes_its_own_checks(project: Path, redis_url: str) -> None:
    run(project, UV, "run", "ruff", "format", "--check", ".")
    run(project, UV, "run", "ruff", "check", ".")
    run(project, UV, "run", "mypy")
    # A developer's .env, for `omnistack dev`: the tests must use neither its database (this
    # one does not answer) nor its Redis (where a dev worker would run the jobs they leave).
    dotenv = project / ".env"
    generated = dotenv.read_text()
    dotenv.write_text(
        f"{generated}\nDATABASE_URL=postgresql://dev:dev@127.0.0.1:{free_port()}/dev\n"
        f"REDIS_URL={redis_url}\n"
    )
    try:
        result = run(project, UV, "run", "pytest", "-q", "-p", "no:cacheprovider")
    finally:
        dotenv.write_text(generated)
    assert " passed" in result.stdout
    developers_redis = Redis.from_url(redis_url)
    try:
        assert developers_redis.dbsize() == 0
    finally:
        developers_redis.close()


# Valid production values for what .env.example leaves empty: what an operator fills in.
PRODUCTION_VALUES = {
    "DATABASE_URL": "postgres://app:secret@db.internal:5432/app",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "AUTH_PROVIDER": "supabase",
    "SUPABASE_PROJECT_URL": "https://abcdefgh.supabase.co",
    "CLERK_ISSUER_URL": "https://example.clerk.accounts.dev",
    "EMAIL_PROVIDER": "resend",
    "EMAIL_FROM": "Acme <hello@acme.example.com>",
    "RESEND_API_KEY": "re_0123456789",
    "STRIPE_SECRET_KEY": "sk_live_0123456789",
    "STRIPE_WEBHOOK_SECRET": "whsec_0123456789abcdef",
    "BILLING_PLANS": '{"pro": "price_123"}',
    "BILLING_SUCCESS_URL": "https://app.example.com/billing/done",
}


def test_check_config_refuses_what_a_production_start_refuses_then_passes(
    project: Path,
) -> None:
    """With .env.example's values in production, check-config and a start agree."""
    example = {
        name: value
        for name, value in dotenv_values(project / ".env.example").items()
        if value  # an empty value counts as unset
    }
    production = {**example, "ENVIRONMENT": "production", "LOG_FORMAT": "text"}

    checked = attempt(project, UV, "run", "omnistack", "check-config", **production)
    started = attempt(project, UV, "run", "python", "-c", "import app.main", **production)

    refused = problem_lines(checked.stderr)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert started.returncode == 1
    assert refused, checked.stderr
    assert refused == problem_lines(started.stderr)
    assert "Traceback" not in started.stderr
    assert {line.split(":", 1)[0] for line in refused} <= set(PRODUCTION_VALUES)
    production |= PRODUCTION_VALUES
    if "auth_provider: clerk" in (project / ".copier-answers.yml").read_text():
        production["AUTH_PROVIDER"] = "clerk"

    passed = attempt(project, UV, "run", "omnistack", "check-config", **production)

    assert passed.returncode == 0, passed.stderr
    assert "environment  production" in passed.stdout


def attempt(project: Path, *command: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command),
        cwd=project,
        env=project_environment(**env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def problem_lines(text: str) -> list[str]:
    return [line.removeprefix("  - ") for line in text.splitlines() if line.startswith("  - ")]


def test_migrations_go_up_down_and_up_without_drift(project: Path, database: str) -> None:
    env = {"ENVIRONMENT": "test", "SECRET_KEY": "m" * 40, "DATABASE_URL": database}
    alembic = (UV, "run", "alembic")
    run(project, *alembic, "upgrade", "head", **env)
    run(project, *alembic, "downgrade", "-1", **env)
    run(project, *alembic, "upgrade", "head", **env)
    run(project, *alembic, "downgrade", "base", **env)
    run(project, *alembic, "upgrade", "head", **env)
    run(project, *alembic, "check", **env)
    current = run(project, *alembic, "current", **env)
    assert "(head)" in current.stdout


def test_the_service_serves_under_uvicorn(project: Path, database: str, redis_url: str) -> None:
    auth = (project / "app" / "api" / "v1" / "me.py").exists()
    port = free_port()
    with LocalIssuer() as issuer:
        env = {
            "ENVIRONMENT": "test",
            "SECRET_KEY": "s" * 40,
            "DATABASE_URL": database,
            "REDIS_URL": redis_url,
            "LOG_FORMAT": "json",
            "PORT": str(port),
        }
        if auth:
            answers = (project / ".copier-answers.yml").read_text()
            provider = "clerk" if "auth_provider: clerk" in answers else "supabase"
            variable = "CLERK_ISSUER_URL" if provider == "clerk" else "SUPABASE_PROJECT_URL"
            env |= {"AUTH_PROVIDER": provider, variable: issuer.url}
        run(project, UV, "run", "python", "scripts/migrate_production.py", **env)
        # The image's command (omnistack serve, on PORT), run outside Docker; and the worker
        # beside it, as deployed.
        server = start(project, env, "omnistack", "serve", "--host", "127.0.0.1")
        jobs = (project / "app" / "jobs" / "worker.py").exists()
        worker = start(project, env, "arq", "app.jobs.worker.WorkerSettings") if jobs else None
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_serving(base, server)
            with httpx.Client(base_url=base, timeout=10) as client:
                assert client.get("/api/v1/public/health").status_code == 200
                ready = client.get("/api/v1/public/health/ready")
                assert ready.status_code == 200, ready.text
                assert client.get("/api/v1/public/metrics").status_code == 200
                if auth:
                    token = (
                        issuer.clerk_token("user_e2e")
                        if provider == "clerk"
                        else issuer.supabase_token("user_e2e")
                    )
                    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
                    assert me.status_code == 200, me.text
                    assert me.json()["id"] == "user_e2e"
                    assert client.get("/api/v1/me").status_code == 401
                    assert_modules_serve_unconfigured(project, client, token)
                # Items belong to the signed-in user where there is sign-in.
                owner = {"Authorization": f"Bearer {token}"} if auth else {}
                created = client.post("/api/v1/items", json={"name": "lamp"}, headers=owner)
                assert created.status_code == 201, created.text
                item = created.json()
            # The image's HEALTHCHECK command.
            healthcheck = subprocess.run(
                ["curl", "-fsS", f"{base}/api/v1/public/health"], check=False, capture_output=True
            )
            assert healthcheck.returncode == 0
            if worker is not None:
                # The worker's health command, and the job the item's request queued.
                wait_until(
                    lambda: (
                        not subprocess.run(
                            [UV, "run", "omnistack", "worker-check"],
                            cwd=project,
                            env=project_environment(**env),
                            capture_output=True,
                            check=False,
                        ).returncode
                    ),
                    timeout=30,
                    interval=0.5,
                    message="the worker never reported healthy",
                )
                worker.send_signal(signal.SIGTERM)
                worker_output, _ = worker.communicate(timeout=60)
                assert f"Item {item['id']} (lamp) created" in worker_output, worker_output
        finally:
            server.send_signal(signal.SIGTERM)
            output, _ = server.communicate(timeout=30)
            if worker is not None and worker.poll() is None:
                worker.kill()
                worker.communicate(timeout=30)
    assert "Application shutdown complete" in output


def assert_modules_serve_unconfigured(project: Path, client: httpx.Client, token: str) -> None:
    """The optional modules chosen start and serve with none of their settings."""
    if (project / "tests" / "test_billing.py").exists():
        assert_billing_serves_without_stripe(client, token)
    if (project / "tests" / "test_chat.py").exists():
        assert_ai_answers_503_without_a_model(client, token)


def assert_billing_serves_without_stripe(client: httpx.Client, token: str) -> None:
    """Billing is mounted and serves with no Stripe setting; what needs Stripe answers 503."""
    state = client.get("/api/v1/billing/subscription", headers={"Authorization": f"Bearer {token}"})
    assert state.status_code == 200, state.text
    assert state.json()["active"] is False
    webhook = client.post("/api/v1/billing/webhook", content=b"{}")
    assert webhook.status_code == 503, webhook.text


def assert_ai_answers_503_without_a_model(client: httpx.Client, token: str) -> None:
    """AI is mounted and the service serves with no AI setting; the chat answers 503 until set."""
    body = {"messages": [{"role": "user", "content": "Hello?"}]}
    for stream in (False, True):
        chat = client.post(
            "/api/v1/ai/chat",
            json={**body, "stream": stream},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert chat.status_code == 503, chat.text
        assert chat.json()["detail"] == "AI is not configured: set AI_DEFAULT_MODEL."
    assert client.post("/api/v1/ai/chat", json=body).status_code == 401


def start(project: Path, env: dict[str, str], *command: str) -> subprocess.Popen[str]:
    """A process of the project (``uv run ...``), its output kept for assertions."""
    return subprocess.Popen(
        [UV, "run", *command],
        cwd=project,
        env=project_environment(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until_serving(base: str, server: subprocess.Popen[str]) -> None:
    def answers() -> bool:
        if server.poll() is not None:
            output = server.stdout.read() if server.stdout else ""
            pytest.fail(f"uvicorn exited with {server.returncode}:\n{output}")
        try:
            httpx.get(f"{base}/api/v1/public/health", timeout=1)
        except httpx.TransportError:
            return False
        return True

    wait_until(answers, timeout=60, interval=0.2, message="uvicorn did not answer")


def test_the_dockerfile_lints_clean(project: Path) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "warning", "docker/Dockerfile"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflows_lint_clean(project: Path, actionlint: list[str]) -> None:
    workflows = sorted(str(path) for path in (project / ".github" / "workflows").glob("*.yml"))
    assert [Path(path).name for path in workflows] == ["ci.yml", "deploy.yml", "security.yml"]
    for workflow in workflows:
        for line in Path(workflow).read_text().splitlines():
            if "uses:" in line and "./" not in line:
                assert re.search(r"@[0-9a-f]{40}\b", line), f"not pinned by SHA: {line.strip()}"
    result = subprocess.run(
        [*actionlint, *workflows], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_jinja_is_left_and_no_secret_escapes_env(project: Path) -> None:
    env_file = (project / ".env").read_text()
    [secret_key] = re.findall(r"^SECRET_KEY=(\S+)$", env_file, flags=re.MULTILINE)
    assert len(secret_key) >= 32
    for path in project.rglob("*"):
        if not path.is_file() or WORK_FILES & set(path.parts) or path.name in (".env", "uv.lock"):
            continue
        if path.suffix == ".whl":
            # docker/wheels/: the checkout's wheel the image installs, compressed, so any two
            # bytes may read as Jinja; the secret must not be in it all the same.
            assert secret_key.encode() not in path.read_bytes()
            continue
        text = path.read_text(errors="replace")
        if not JINJA_FILES & set(path.parts):
            assert not JINJA_LEFTOVER.search(text), f"Jinja left in {path.relative_to(project)}"
        assert secret_key not in text, f"the secret key is in {path.relative_to(project)}"
    assert ".env" in (project / ".gitignore").read_text().split()
    assert "SECRET_KEY" not in (project / ".copier-answers.yml").read_text()
