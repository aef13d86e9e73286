"""The generated image, built and run by a real Docker engine: the contract the platforms rely on.

For the default answers and the answers with every module, the service is generated from this
checkout the way the README's main command does it, built with its README's ``docker build``,
and run against the host's PostgreSQL and Redis (``--network host``) with an env file holding
exactly what the Dockerfile's header says production requires.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from omnistack_core.testing import create_test_database, drop_test_database, flush_redis
from omnistack_core.testing.pytest_plugin import services_required
from omnistack_core.testing.services import DEFAULT_TEST_POSTGRES_URL
from tests.container.conftest import FIGURES
from tests.container.engine import Engine, ensure_base_images
from tests.template.rendering import ANSWER_SETS, REPOSITORY, render, snapshot
from tests.template.supabase_tokens import LEGACY_JWT_SECRET, legacy_supabase_token

# The containers reach the host's PostgreSQL and Redis too.
pytestmark = [pytest.mark.container, pytest.mark.integration]

BUILT_SETS = ["defaults", "everything-supabase"]
# Redis database 5: the test suite's own runs use 15 (developers) and 12 (CI), which their
# tests flush; the containers' queue must not be flushed under them, nor theirs by us.
REDIS_URL = "redis://127.0.0.1:6379/5"
USER_ID = 10001
# What production needs besides the database and Redis, for the names the Dockerfile's header
# lists: values an operator would fill in (no provider is called by what these tests do).
PRODUCTION_VALUES = {
    "SUPABASE_PROJECT_URL": "https://abcdefgh.supabase.co",
    "CLERK_ISSUER_URL": "https://example.clerk.accounts.dev",
    "EMAIL_FROM": "Acme <hello@acme.example.com>",
    "RESEND_API_KEY": "re_0123456789",
    "STRIPE_SECRET_KEY": "sk_live_0123456789",
    "STRIPE_WEBHOOK_SECRET": "whsec_0123456789abcdef",
    "BILLING_PLANS": '{"pro": "price_123"}',
    "BILLING_SUCCESS_URL": "https://app.example.com/billing/done",
}
# What the image's /srv holds: the service's code and nothing of the developer's checkout.
SERVICE_FILES = {"alembic.ini", "app", "migrations", "pyproject.toml", "scripts", "uv.lock"}


@dataclass
class Service:
    """A generated service, its image built, and what its containers run against."""

    name: str
    project: Path
    engine: Engine
    image: str
    env_file: Path
    database_url: str
    containers: list[str] = field(default_factory=list)
    cached_build_output: str = ""

    def run(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``docker run --rm`` of the image on the host's network with the production env."""
        return self.engine.docker(
            "run", "--rm", "--network", "host", "--env-file", str(self.env_file),
            *arguments, check=check, timeout=300,
        )  # fmt: skip

    def start(self, *arguments: str, command: tuple[str, ...] = ()) -> str:
        """A detached container of the image (removed at the end of the module); its id."""
        started = self.engine.docker(
            "run", "-d", "--network", "host", "--env-file", str(self.env_file),
            *arguments, self.image, *command,
        )  # fmt: skip
        container = started.stdout.strip()
        self.containers.append(container)
        return container

    def inspect(self, container: str, template: str) -> str:
        return self.engine.docker("inspect", "-f", template, container).stdout.strip()

    def logs(self, container: str) -> str:
        result = self.engine.docker("logs", container)
        return result.stdout + result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def readme_build_command(project: Path) -> list[str]:
    """The generated README's ``docker build`` line, as its reader would type it."""
    for line in (project / "README.md").read_text().splitlines():
        if line.startswith("docker build "):
            return shlex.split(line)
    raise AssertionError("the generated README has no docker build line")


def required_variables(dockerfile: str) -> dict[str, str]:
    """The variables the Dockerfile's header says production requires, with given values."""
    names: dict[str, str] = {}
    lines = dockerfile.splitlines()
    start = next(i for i, line in enumerate(lines) if "omnistack env` lists" in line) + 1
    for line in lines[start:]:
        if not line.startswith("#   "):
            break
        for entry in line[1:].split():
            name, _, value = entry.partition("=")
            names[name] = value
    return names


def production_env(dockerfile: str, database_url: str) -> str:
    values = {"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, **PRODUCTION_VALUES}
    lines = []
    for name, given in required_variables(dockerfile).items():
        value = "k" * 48 if name == "SECRET_KEY" else given or values[name]
        # --env-file keeps quotes as part of the value: none are written.
        lines.append(f"{name}={value}")
    # Items belong to a signed-in user; the tests sign their users' tokens with the project's
    # legacy secret, since Supabase's JWKS cannot be reached from here.
    lines.append(f"SUPABASE_JWT_SECRET={LEGACY_JWT_SECRET}")
    return "\n".join(lines) + "\n"


def signed_in(sub: str) -> dict[str, str]:
    token = legacy_supabase_token(PRODUCTION_VALUES["SUPABASE_PROJECT_URL"], sub)
    return {"Authorization": f"Bearer {token}"}


def timed_build(engine: Engine, project: Path, *extra: str) -> tuple[float, str]:
    command = readme_build_command(project)
    assert command[:2] == ["docker", "build"], command
    # The proxy's CA reaches uv as a BuildKit secret, the only addition to the README's command:
    # it is in this machine's trust store, not the image's.
    bundle = os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    secret = f"id=ca-certificates,src={bundle}"
    arguments = [*command[2:-1], *extra, "--secret", secret, command[-1]]
    started = time.monotonic()
    result = engine.docker("build", *arguments, cwd=project, timeout=1200)
    return time.monotonic() - started, result.stdout + result.stderr


def postgres_server() -> str:
    return os.environ.get("OMNISTACK_TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL)


def fresh_database_and_queue() -> str:
    """A new database on the test server, and the containers' Redis database emptied."""
    try:
        database_url = create_test_database(postgres_server())
        flush_redis(REDIS_URL)
    except Exception as exc:  # noqa: BLE001 - any reason the servers are unusable
        if services_required():
            pytest.fail(f"PostgreSQL and Redis are required: {exc}")
        pytest.skip(f"PostgreSQL or Redis is not reachable: {exc}")
    return database_url


def release_database_and_queue(database_url: str) -> None:
    drop_test_database(postgres_server(), database_url)
    flush_redis(REDIS_URL)


def generated_from_checkout(
    template: Path, tmp_path_factory: pytest.TempPathFactory, name: str
) -> Path:
    """The answer set ``name``'s service, generated as the README's main command does."""
    answers = {**ANSWER_SETS[name], "omnistack_core_version": f"@ {REPOSITORY.as_uri()}"}
    return render(template, tmp_path_factory.mktemp(name) / "service", answers)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="module", params=BUILT_SETS)
def service(
    request: pytest.FixtureRequest,
    template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    docker_engine: Engine,
) -> Iterator[Service]:
    """The answer set's service, generated from this checkout as the README's main command
    does (its uv.lock points at the checkout), built cold and then from the cache."""
    name = request.param
    database_url = fresh_database_and_queue()
    project = generated_from_checkout(template, tmp_path_factory, name)
    dockerfile = (project / "docker/Dockerfile").read_text()
    command = readme_build_command(project)
    image = command[command.index("-t") + 1]
    env_file = project.parent / "production.env"
    env_file.write_text(production_env(dockerfile, database_url))
    built = Service(name, project, docker_engine, image, env_file, database_url)
    try:
        made = time.monotonic()
        ensure_base_images(docker_engine, dockerfile)
        for base, seconds in docker_engine.timings.items():
            FIGURES.append(f"stand-in {base}: made in {seconds:.1f} s")
        docker_engine.timings.clear()
        FIGURES.append(f"{name}: base images ready in {time.monotonic() - made:.1f} s")
        # --no-cache: every layer built again (uv's download cache, a cache mount, may be warm).
        cold, _ = timed_build(docker_engine, project, "--no-cache")
        cached, built.cached_build_output = timed_build(docker_engine, project)
        size = int(docker_engine.docker("image", "inspect", "-f", "{{.Size}}", image).stdout)
        FIGURES.append(
            f"{name}: cold build {cold:.1f} s, cached build {cached:.1f} s, "
            f"image {size / 1e6:.0f} MB"
        )
        yield built
    finally:
        for container in built.containers:
            docker_engine.docker("rm", "-f", container, check=False)
        docker_engine.discard(image)
        release_database_and_queue(database_url)


def test_the_readme_build_command_builds_the_image_then_builds_it_from_the_cache(
    service: Service,
) -> None:
    # Built by the fixture with the README's command; an unchanged tree reuses every layer.
    output = service.cached_build_output
    steps = set(re.findall(r"^#\d+ \[(?:build|stage-1)\s+\d+/\d+\] (.+)$", output, re.M))
    assert steps, output
    assert re.search(r"^#\d+ CACHED$", output, re.M), output
    assert not re.search(r"^#\d+ \d+\.\d+ ", output, re.M), "a step ran again:\n" + output
    assert service.inspect(service.image, "{{.Config.User}}") == str(USER_ID)


def alembic_versions(database_url: str) -> set[str]:
    import asyncpg  # noqa: PLC0415 - with the postgres extra, as the fixtures

    async def read() -> set[str]:
        connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:
            rows = await connection.fetch("SELECT version_num FROM alembic_version")
        finally:
            await connection.close()
        return {row["version_num"] for row in rows}

    return asyncio.run(read())


@pytest.fixture(scope="module")
def migrated(service: Service) -> set[str]:
    """The service's database migrated by the image; the revisions it is at."""
    result = service.run(service.image, "python", "scripts/migrate_production.py", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return alembic_versions(service.database_url)


def test_migrations_apply_in_the_container_and_a_second_run_changes_nothing(
    service: Service, migrated: set[str]
) -> None:
    assert migrated, "the migration left no revision in alembic_version"
    again = service.run(service.image, "python", "scripts/migrate_production.py", check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert alembic_versions(service.database_url) == migrated


def wait_for(
    condition: str,
    check: Callable[[], bool],
    timeout: float = 60,
    details: Callable[[], str] = str,
) -> None:
    """Poll ``check()`` until it is true; fail naming ``condition`` (and ``details()``, such as
    a container's log at that moment) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    pytest.fail(f"{condition}: not within {timeout:.0f} s\n{details()}")


def answers(url: str, status: int = 200) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == status
    except httpx.TransportError:
        return False


def start_api(service: Service) -> tuple[str, str]:
    """The image's own command on a free port, with a frequent HEALTHCHECK; (container, base)."""
    port = free_port()
    # The image's health command at a 1 s interval: its own 30 s would only make the test wait.
    container = service.start("-e", f"PORT={port}", "--health-interval", "1s")
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    wait_for(
        f"liveness of the {service.name} container",
        lambda: answers(f"{base}/api/v1/public/health"),
        details=lambda: service.logs(container),
    )
    FIGURES.append(f"{service.name}: API answering {time.monotonic() - started:.1f} s after run")
    return container, base


def test_the_api_serves_health_readiness_and_metrics_as_the_non_root_user_and_turns_healthy(
    service: Service, migrated: set[str]
) -> None:
    container, base = start_api(service)
    ready = httpx.get(f"{base}/api/v1/public/health/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    metrics = httpx.get(f"{base}/api/v1/public/metrics", timeout=10)
    assert metrics.status_code == 200
    assert "http_requests_total" in metrics.text
    status = service.engine.docker("exec", container, "cat", "/proc/1/status").stdout
    [uid_line] = [line for line in status.splitlines() if line.startswith("Uid:")]
    assert uid_line.split()[1:] == [str(USER_ID)] * 4
    wait_for(
        "the image's HEALTHCHECK reporting healthy",
        lambda: service.inspect(container, "{{.State.Health.Status}}") == "healthy",
    )
    records = [json.loads(line) for line in service.logs(container).splitlines() if line[:1] == "{"]
    slug = service.image.split(":")[0]
    assert records, "the container logged no JSON line"
    assert {record.get("service") for record in records} == {slug}


def readiness_status(base: str) -> int | None:
    """Readiness' status code, or None when the server does not take the connection."""
    try:
        return httpx.get(f"{base}/api/v1/public/health/ready", timeout=2).status_code
    except httpx.TransportError:
        return None


def send_in_flight(base: str, body: bytes) -> socket.socket:
    """A POST whose headers and half its body are sent: in flight until the rest arrives."""
    port = int(base.rsplit(":", 1)[1])
    client = socket.create_connection(("127.0.0.1", port), timeout=30)
    client.sendall(
        b"POST /api/v1/items HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Authorization: {signed_in('in-flight')['Authorization']}\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[: len(body) // 2]
    )
    return client


def posts_in_progress(base: str) -> float:
    """The API's own count of POST requests being served (http_requests_in_progress)."""
    metrics = httpx.get(f"{base}/api/v1/public/metrics", timeout=5).text
    match = re.search(r'^http_requests_in_progress\{method="POST"\} (\S+)$', metrics, re.M)
    return float(match[1]) if match else 0.0


def test_docker_stop_drains_in_flight_requests_and_exits_0(
    service: Service, migrated: set[str]
) -> None:
    container, base = start_api(service)
    assert answers(f"{base}/api/v1/public/health/ready")
    body = json.dumps({"name": "in flight at the stop"}).encode()
    client = send_in_flight(base, body)
    wait_for("the POST in flight", lambda: posts_in_progress(base) == 1, timeout=10)
    stopping = subprocess.Popen(
        [ "/usr/bin/docker", "stop", container],
        env=service.engine.environment,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    signalled = time.monotonic()
    # From the signal on, readiness stops saying ready: 503 from the app while the server
    # still accepts (uvicorn closes its listening socket within about 0.1 s of the signal),
    # then no answer at all. Which of the two a poll sees first is a race: printed, not asserted.
    seen: list[int | None] = []

    def not_ready() -> bool:
        seen.append(readiness_status(base))
        return seen[-1] != 200

    wait_for("readiness to stop answering 200 after docker stop", not_ready, timeout=10)
    first = "refused" if seen[-1] is None else seen[-1]
    FIGURES.append(f"{service.name}: readiness after docker stop: {first} first")
    client.sendall(body[len(body) // 2 :])
    response = client.recv(65536).decode()
    client.close()
    assert response.startswith("HTTP/1.1 201"), response
    assert stopping.wait(timeout=60) == 0
    FIGURES.append(f"{service.name}: docker stop took {time.monotonic() - signalled:.1f} s")
    # 0, not 137: the process finished before docker stop's 10 s ran out and SIGKILL came.
    assert service.inspect(container, "{{.State.ExitCode}}") == "0", service.logs(container)


def test_the_worker_runs_a_job_from_the_api_and_passes_worker_check(
    service: Service, migrated: set[str]
) -> None:
    compose = yaml.safe_load((service.project / "docker-compose.yml").read_text())
    command = tuple(compose["services"]["worker"]["command"])
    worker = service.start(command=command)
    _, base = start_api(service)
    name = f"job from {service.name}"
    created = httpx.post(
        f"{base}/api/v1/items", json={"name": name}, headers=signed_in("worker"), timeout=10
    )
    assert created.status_code == 201, created.text
    item_id = created.json()["id"]
    wait_for(
        f"the worker logging item {item_id}",
        lambda: f"Item {item_id} ({name}) created" in service.logs(worker),
        details=lambda: service.logs(worker),
    )
    check = service.engine.docker("exec", worker, "omnistack", "worker-check", check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_image_holds_no_env_no_tests_no_uv_and_no_build_tools(service: Service) -> None:
    assert (service.project / ".env").is_file()  # in the build context, kept out by .dockerignore
    listing = service.engine.docker(
        "run", "--rm", "--entrypoint", "sh", service.image, "-c",
        "ls -A /srv; echo ---; find / -xdev \\( -name .env -o -name uv -o -name uvx"
        " -o -name 'omnistack_core-*.whl' \\) -print; echo ---;"
        " for tool in uv uvx gcc cc g++ make pip; do command -v $tool; done;"
        " ls /run/secrets 2>/dev/null; true",
    ).stdout  # fmt: skip
    srv, found, tools = listing.split("---\n")
    assert set(srv.split()) == SERVICE_FILES
    assert found.split() == []
    assert tools.split() == []
    assert re.search(r"^ENVIRONMENT=production$", service.inspect(
        service.image, "{{range .Config.Env}}{{println .}}{{end}}"
    ), re.MULTILINE)  # fmt: skip
