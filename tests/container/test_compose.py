"""The generated docker-compose.yml, run by Compose v2: migration, API and worker come up healthy.

For the default answers and the answers with every module, the service is generated from this
checkout, its image built with the README's ``docker build`` (the compose file builds nothing:
it names the image), and the stack brought up with a test override on top of the generated
file (``-f docker-compose.yml -f override.yml``). The override swaps the ``db`` and ``redis``
services for the host's PostgreSQL (a fresh database) and Redis (database 5): the services run
on the host's network, where those listen on 127.0.0.1, and depend only on the migration. It
also shortens the health checks' intervals, which only makes the test wait less.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from omnistack_core.testing.pytest_plugin import services_required
from tests.container.conftest import FIGURES
from tests.container.engine import (
    Engine,
    EngineUnavailableError,
    compose_environment,
    ensure_base_images,
)
from tests.container.test_image import (
    REDIS_URL,
    free_port,
    fresh_database_and_queue,
    generated_from_checkout,
    production_env,
    readme_build_command,
    release_database_and_queue,
    signed_in,
    timed_build,
    wait_for,
)
from tests.template.rendering import snapshot
from tests.template.supabase_tokens import LEGACY_JWT_SECRET

pytestmark = [pytest.mark.container, pytest.mark.integration]

COMPOSED_SETS = ["defaults", "everything-supabase"]
# What the test brings up: the database and Redis are the host's.
SERVICES = ("migrate", "api", "worker")


@dataclass
class Stack:
    """A generated service's compose project, its image built."""

    name: str
    project: Path
    engine: Engine
    environment: dict[str, str]
    project_name: str
    env_file: Path
    port: int

    def compose(
        self,
        *arguments: str,
        files: tuple[str, ...] = ("docker-compose.yml", "../override.yml"),
        check: bool = True,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        """``docker compose`` with the env file and ``files`` (the generated file, the override)."""
        options = ["--project-name", self.project_name, "--env-file", str(self.env_file)]
        for name in files:
            options += ["-f", name]
        result = subprocess.run(
            ["/usr/bin/docker", "compose", *options, *arguments],
            env=self.environment,
            cwd=self.project,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode:
            message = f"docker compose {' '.join(arguments)} exited {result.returncode}"
            raise AssertionError(f"{message}\n{result.stdout}\n{result.stderr}")
        return result

    def states(self) -> dict[str, dict[str, object]]:
        """Each service's container, as ``docker compose ps --all`` reports it."""
        output = self.compose("ps", "--all", "--format", "json").stdout
        entries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        return {entry["Service"]: entry for entry in entries}

    def logs(self, service: str = "") -> str:
        result = self.compose("logs", "--no-color", *([service] if service else []), check=False)
        return result.stdout + result.stderr


def override(compose_file: str, database_url: str, port: int) -> str:
    """The test's override: the host's PostgreSQL and Redis in place of ``db`` and ``redis``.

    Written as text: ``!reset`` and ``!override`` (Compose 2.24+) are tags a YAML dumper does
    not write. JSON values are YAML.
    """
    services = yaml.safe_load(compose_file)["services"]
    host = {"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL}
    # The tests sign their users' tokens with the legacy secret (Supabase's JWKS is out of reach).
    signing = {"SUPABASE_JWT_SECRET": LEGACY_JWT_SECRET}
    after_migration = {"migrate": {"condition": "service_completed_successfully"}}
    # The API listens on a free port of the host; the health command is the file's, on that port.
    api_check = [
        part.replace(":8000/", f":{port}/") for part in services["api"]["healthcheck"]["test"]
    ]
    assert api_check != services["api"]["healthcheck"]["test"], "the API's check names no :8000"
    lines = [
        "services:",
        "  migrate:",
        "    network_mode: host",
        f"    environment: {json.dumps(host | signing)}",
        "    depends_on: !reset {}",
        "  api:",
        "    network_mode: host",
        "    ports: !reset []",
        f"    environment: {json.dumps(host | signing | {'PORT': str(port)})}",
        f"    depends_on: !override {json.dumps(after_migration)}",
        f"    healthcheck: {json.dumps({'test': api_check, 'interval': '1s'})}",
    ]
    if "worker" in services:
        lines += [
            "  worker:",
            "    network_mode: host",
            f"    environment: {json.dumps(host | signing)}",
            f"    depends_on: !override {json.dumps(after_migration)}",
            "    healthcheck: {interval: 1s}",
        ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="module", params=COMPOSED_SETS)
def stack(
    request: pytest.FixtureRequest,
    template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    docker_engine: Engine,
) -> Iterator[Stack]:
    """The answer set's service generated from this checkout, its image built, its override
    and env file written; the project taken down and the image discarded at the end."""
    name = request.param
    try:
        environment = compose_environment(docker_engine)
    except EngineUnavailableError as exc:
        if services_required():
            pytest.fail(f"Compose v2 is required: {exc} (OMNISTACK_REQUIRE_SERVICES=1)")
        pytest.skip(str(exc))
    database_url = fresh_database_and_queue()
    project = generated_from_checkout(template, tmp_path_factory, name)
    dockerfile = (project / "docker/Dockerfile").read_text()
    command = readme_build_command(project)
    image = command[command.index("-t") + 1]
    compose_file = (project / "docker-compose.yml").read_text()
    port = free_port()
    (project.parent / "override.yml").write_text(override(compose_file, database_url, port))
    env_file = project.parent / "production.env"
    env_file.write_text(production_env(dockerfile, database_url))
    project_name = f"omnistack-compose-{name}"
    built = Stack(name, project, docker_engine, environment, project_name, env_file, port)
    try:
        ensure_base_images(docker_engine, dockerfile)
        docker_engine.timings.clear()
        seconds, _ = timed_build(docker_engine, project)
        FIGURES.append(f"compose {name}: image built in {seconds:.1f} s")
        yield built
    finally:
        built.compose("down", "--remove-orphans", check=False)
        docker_engine.discard(image)
        release_database_and_queue(database_url)


def test_compose_config_accepts_the_generated_file_alone_with_production_values(
    stack: Stack,
) -> None:
    result = stack.compose("config", files=("docker-compose.yml",), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert {"migrate", "api", "db", "redis"} <= set(resolved["services"])


def test_compose_config_accepts_the_generated_file_and_the_override(stack: Stack) -> None:
    resolved = yaml.safe_load(stack.compose("config").stdout)
    for service in SERVICES:
        if service == "worker" and "worker" not in resolved["services"]:
            continue
        assert resolved["services"][service]["network_mode"] == "host"
    assert set(resolved["services"]["api"]["depends_on"]) == {"migrate"}


@pytest.fixture(scope="module")
def up(stack: Stack) -> Stack:
    """``docker compose up -d`` of the migration, the API and the worker, then healthy."""
    defined = stack.compose("config", "--services").stdout.split()
    services = [service for service in SERVICES if service in defined]
    started = time.monotonic()
    # up returns once the migration has completed (the API and worker wait for it) and they run.
    result = stack.compose("up", "-d", *services, check=False)
    assert result.returncode == 0, result.stdout + result.stderr + stack.logs()
    FIGURES.append(f"compose {stack.name}: up -d returned in {time.monotonic() - started:.1f} s")

    def healthy() -> bool:
        states = stack.states()
        return all(
            states.get(service, {}).get("Health") == "healthy"
            for service in services
            if service != "migrate"
        )

    wait_for(f"{', '.join(services[1:])} healthy", healthy, timeout=120, details=stack.logs)
    FIGURES.append(f"compose {stack.name}: all healthy {time.monotonic() - started:.1f} s after up")
    return stack


def test_compose_up_completes_the_migration_and_the_api_and_worker_turn_healthy(
    up: Stack,
) -> None:
    states = up.states()
    assert states["migrate"]["State"] == "exited", states["migrate"]
    assert states["migrate"]["ExitCode"] == 0, up.logs("migrate")
    assert states["api"]["Health"] == "healthy"
    if "worker" in states:
        assert states["worker"]["State"] == "running"
        assert states["worker"]["Health"] == "healthy"
    ready = httpx.get(f"http://127.0.0.1:{up.port}/api/v1/public/health/ready", timeout=10)
    assert ready.status_code == 200, ready.text


def test_the_compose_worker_runs_a_job_the_api_enqueued(up: Stack) -> None:
    if "worker" not in up.states():
        pytest.skip("this answer set has no jobs module, so no worker")
    name = f"job through compose {up.name}"
    created = httpx.post(
        f"http://127.0.0.1:{up.port}/api/v1/items",
        json={"name": name},
        headers=signed_in("compose"),
        timeout=10,
    )
    assert created.status_code == 201, created.text
    item_id = created.json()["id"]
    wait_for(
        f"the compose worker logging item {item_id}",
        lambda: f"Item {item_id} ({name}) created" in up.logs("worker"),
        details=lambda: up.logs("worker"),
    )


def test_compose_stop_lets_the_api_and_worker_exit_0_within_their_grace_periods(
    up: Stack,
) -> None:
    started = time.monotonic()
    up.compose("stop")
    FIGURES.append(f"compose {up.name}: stop took {time.monotonic() - started:.1f} s")
    states = up.states()
    for service in ("api", "worker"):
        if service in states:
            # 0, not 137: each finished before its stop_grace_period ran out and SIGKILL came.
            assert states[service]["ExitCode"] == 0, up.logs(service)


def test_compose_down_exits_0_and_leaves_no_container(up: Stack) -> None:
    started = time.monotonic()
    result = up.compose("down", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    FIGURES.append(f"compose {up.name}: down took {time.monotonic() - started:.1f} s")
    left = up.engine.docker(
        "ps", "--all", "--quiet", "--filter", f"label=com.docker.compose.project={up.project_name}"
    ).stdout.split()
    assert left == []
