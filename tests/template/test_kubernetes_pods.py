"""The pods' processes on what their securityContext leaves them: a read-only root but /tmp.

The production overlay's environment, built as in test_kubernetes, is handed to the migration
job's, the API's and the worker's commands, each run by the generated service's own
virtualenv in a mount namespace where the root file system and the project are read-only and
/tmp alone is writable (the pods' readOnlyRootFilesystem and emptyDir). They migrate
PostgreSQL, serve the probes, take a request, and run the job it queues.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from omnistack_core.testing import create_test_database, drop_test_database, wait_until
from omnistack_core.testing.pytest_plugin import services_required
from omnistack_core.testing.services import DEFAULT_TEST_POSTGRES_URL
from tests.template.migration_reports import FRESH_DATABASE_REVISIONS, applied_revisions
from tests.template.rendering import ANSWER_SETS, REPOSITORY, render, snapshot
from tests.template.supabase_tokens import LEGACY_JWT_SECRET, legacy_supabase_token
from tests.template.test_generated_project import UV, free_port, run
from tests.template.test_kubernetes import (
    SECRET_VALUES,
    Built,
    container,
    kustomize_build,
    pod_environment,
    slug,
    switch_everything_on,
)

pytestmark = pytest.mark.integration

# Made read-only in the namespace, after /tmp became a mount of its own that stays writable;
# then the command runs.
READ_ONLY = (
    'mount --bind /tmp /tmp && mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" '
    '&& mount -o remount,ro,bind / && shift && exec "$@"'
)


def unavailable(reason: str) -> None:
    if services_required():
        pytest.fail(f"{reason} (OMNISTACK_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def read_only() -> list[str]:
    """The command prefix that runs a command with the root file system read-only."""
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        unavailable("a read-only root needs unshare(1) and root, to mount in a namespace")
    base = [str(unshare), "--mount", "--propagation", "private"]
    probe = subprocess.run([*base, "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        unavailable(f"mount namespaces are not permitted here: {probe.stderr.strip()}")
    return [*base, "sh", "-c", READ_ONLY, "sh"]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, kubectl: str) -> Built:
    """Every module, installed with this checkout's omnistack-core; production, all on."""
    template = snapshot(tmp_path_factory.mktemp("template"))
    answers = {
        **ANSWER_SETS["everything-supabase"],
        "omnistack_core_version": f"@ {REPOSITORY.as_uri()}",
    }
    project = render(template, tmp_path_factory.mktemp("pods") / "service", answers)
    run(project, UV, "sync", "--quiet", "--reinstall-package", "omnistack-core")
    overlay = project / "deploy/k8s/overlays/production"
    switch_everything_on(overlay)
    objects = [obj for obj in yaml.safe_load_all(kustomize_build(kubectl, overlay)) if obj]
    return Built(project, overlay, objects)


@pytest.fixture
def database() -> Iterator[str]:
    server = os.environ.get("OMNISTACK_TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL)
    try:
        url = create_test_database(server)
    except Exception as exc:  # noqa: BLE001 - any reason the server is unusable
        unavailable(f"PostgreSQL is not reachable: {exc}")
    yield url
    drop_test_database(server, url)


def process_environment(
    service: Built, workload: dict[str, Any], secret: dict[str, str], **overrides: str
) -> dict[str, str]:
    """The pod's environment, with the image's own variables (docker/Dockerfile's ENV)."""
    env = pod_environment(service, workload, secret)
    venv = service.project / ".venv/bin"
    return {
        **env,
        "PATH": f"{venv}:{os.environ['PATH']}",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        **overrides,
    }


def image_command(project: Path) -> list[str]:
    (cmd,) = re.findall(r"^CMD (\[.*\])$", (project / "docker/Dockerfile").read_text(), re.M)
    command: list[str] = json.loads(cmd)
    return command


def wait_for(url: str, process: subprocess.Popen[str]) -> None:
    def answers() -> bool:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"{process.args} exited with {process.returncode}:\n{output}")
        try:
            httpx.get(url, timeout=1)
        except httpx.TransportError:
            return False
        return True

    wait_until(answers, timeout=90, interval=0.3, message=f"nothing answered at {url}")


def test_the_pods_migrate_serve_and_run_jobs_with_a_read_only_root(
    service: Built, read_only: list[str], database: str, redis_url: str
) -> None:
    project = service.project
    # A filled-in Secret, pointing at this machine's servers; no Sentry, which would send. The
    # overlay's DB_USE_NULL_POOL=true says a pooler is in front, so the migration refuses to
    # run without a direct URL: here it is the same server, with nothing in between.
    secret = {
        **SECRET_VALUES,
        "DATABASE_URL": database,
        "DATABASE_DIRECT_URL": database,
        "REDIS_URL": redis_url,
    }
    del secret["SENTRY_DSN"]
    (job,) = service.of_kind("Job")
    api = service.named("Deployment", slug(service))
    worker = service.named("Deployment", f"{slug(service)}-worker")
    wrap = [*read_only, str(project)]
    # The premise: the project and the root refuse writes, /tmp takes them.
    scratch = Path("/tmp") / f"omnistack-pod-probe-{os.getpid()}"  # noqa: S108 - the pod's /tmp
    for path, writable in [(project / "probe", False), (Path("/probe"), False), (scratch, True)]:
        touched = subprocess.run([*wrap, "touch", str(path)], capture_output=True, check=False)
        assert (touched.returncode == 0) is writable, path
    scratch.unlink()

    migrate = subprocess.run(
        [*wrap, *container(job)["command"]],
        cwd=project,
        env=process_environment(service, job, secret),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert applied_revisions(migrate.stdout) == FRESH_DATABASE_REVISIONS

    port, metrics_port = free_port(), free_port()
    processes = {
        "api": subprocess.Popen(
            [*wrap, *image_command(project)],
            cwd=project,
            env=process_environment(
                service, api, secret, PORT=str(port), SUPABASE_JWT_SECRET=LEGACY_JWT_SECRET
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ),
        "worker": subprocess.Popen(
            [*wrap, *container(worker)["command"]],
            cwd=project,
            env=process_environment(service, worker, secret, WORKER_METRICS_PORT=str(metrics_port)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ),
    }
    outputs: dict[str, str] = {}
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/api/v1/public/health", processes["api"])
        wait_for(f"http://127.0.0.1:{metrics_port}/", processes["worker"])
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.get("/api/v1/public/health").status_code == 200
            ready = client.get("/api/v1/public/health/ready")
            # Supabase's keys are out of reach from here: that check alone may be degraded.
            assert ready.status_code == 200, ready.text
            checks = ready.json()["checks"]
            assert checks["database"]["status"] == checks["redis"]["status"] == "ok"
            # METRICS_TOKEN is in the Secret: Prometheus must bring it.
            assert client.get("/api/v1/public/metrics").status_code == 401
            token = {"Authorization": f"Bearer {secret['METRICS_TOKEN']}"}
            assert client.get("/api/v1/public/metrics", headers=token).status_code == 200
            # Items belong to a signed-in user: one with a token signed by the project's
            # legacy secret, since the project's JWKS is out of reach from here.
            token = legacy_supabase_token(secret["SUPABASE_PROJECT_URL"], "user-pods")
            owner = {"Authorization": f"Bearer {token}"}
            item = client.post("/api/v1/items", json={"name": "lamp"}, headers=owner)
            assert item.status_code == 201, item.text
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/", timeout=5).status_code == 200
        wait_until(
            lambda: re.search(
                r'^background_jobs_total\{.*status="success"\} 1\.0$',
                httpx.get(f"http://127.0.0.1:{metrics_port}/", timeout=5).text,
                re.M,
            ),
            timeout=30,
            interval=0.5,
            message="the worker never finished the job the request queued",
        )
    finally:
        for name, process in processes.items():
            process.send_signal(signal.SIGTERM)
            outputs[name], _ = process.communicate(timeout=60)

    # uvicorn raises the signal again once it has shut down, as a stopped process should.
    for name, process in processes.items():
        assert process.returncode in (0, -signal.SIGTERM), outputs[name]
    assert "Application shutdown complete" in outputs["api"]
    assert f"Item {item.json()['id']} (lamp) created" in outputs["worker"]
    for name, output in [("migrate", migrate.stdout + migrate.stderr), *outputs.items()]:
        assert "Read-only file system" not in output, (name, output)
