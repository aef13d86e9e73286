"""``omnistack check-platform`` on generated services: it passes as generated, and fails on
each variable taken out of a platform file, naming the file, the process and the variable.

Each answer set is rendered once from a snapshot of this working tree; the check runs in the
generated project as its CI runs it (the project's app, built from its own directory).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from omnistack_core.cli.platforms import compose, fly, kubernetes, kustomize, railway, render
from omnistack_core.cli.platforms.processes import PlatformFile
from tests.template.rendering import ANSWER_SETS, renderer

ANSWERS: dict[str, dict[str, Any]] = {
    **ANSWER_SETS,
    # Every platform without the worker, with Clerk and a sender.
    "clerk-everywhere": {
        "project_name": "Clerk Everywhere",
        "auth_provider": "clerk",
        "modules": ["email", "billing"],
        "deploy_targets": ["railway", "render", "fly", "docker", "kubernetes"],
    },
}
READERS = (render.read, fly.read, railway.read, compose.read, kubernetes.read)


@pytest.fixture(scope="module")
def generate(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Render an answer set on first use; later tests of the module reuse the project."""
    return renderer(tmp_path_factory, ANSWERS)


def check_platform(project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """``omnistack check-platform`` in ``project``, with none of this run's variables."""
    return subprocess.run(
        [sys.executable, "-m", "omnistack_core.cli", "check-platform", *arguments],
        cwd=project,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def platform_files(project: Path) -> list[PlatformFile]:
    return [found for read in READERS for found in read(project)]


# --- as generated -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ANSWERS)
def test_every_generated_platform_file_passes_the_check(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)

    result = check_platform(project, "--format", "json")

    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    platforms = {"docker": "compose"}
    assert {file["platform"] for file in report["files"]} == {
        platforms.get(target, target) for target in ANSWERS[name]["deploy_targets"]
    }
    kinds = {"api", "migration"} | ({"worker"} if "jobs" in ANSWERS[name]["modules"] else set())
    for file in report["files"]:
        assert {process["kind"] for process in file["processes"]} == kinds, file["path"]


@pytest.mark.parametrize("name", ANSWERS)
def test_every_process_traces_a_tenth_of_requests_and_names_itself(
    generate: Callable[[str], Path], name: str
) -> None:
    for file in platform_files(generate(name)):
        for process in file.processes:
            where = f"{file.path}: {process.name}"
            assert process.settings["SENTRY_TRACES_SAMPLE_RATE"].values == ("0.1",), where
            assert process.settings["SERVICE_NAME"].given, where
            assert "SENTRY_DSN" in process.settings, where


@pytest.mark.parametrize("name", [n for n in ANSWERS if "docker" in ANSWERS[n]["deploy_targets"]])
def test_compose_names_each_process_in_its_logs(generate: Callable[[str], Path], name: str) -> None:
    project = generate(name)
    slug = yaml.safe_load((project / ".copier-answers.yml").read_text())["project_slug"]
    services = yaml.safe_load((project / "docker-compose.yml").read_text())["services"]

    names = {
        service: config["environment"]["SERVICE_NAME"]
        for service, config in services.items()
        if "SERVICE_NAME" in config.get("environment", {})
    }

    expected = {"migrate": f"{slug}-migrate", "api": slug}
    if "jobs" in ANSWERS[name]["modules"]:
        expected["worker"] = f"{slug}-worker"
    assert names == expected


def required_in_production(project: Path, values: dict[str, str]) -> set[str]:
    """What production requires with ``values``, from ``omnistack env --format json``."""
    result = subprocess.run(
        [sys.executable, "-m", "omnistack_core.cli", "env", "--format", "json"],
        cwd=project,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    required = set()
    for variable in json.loads(result.stdout)["variables"]:
        for requirement in variable["required"]:
            if "production" not in requirement["environments"]:
                continue
            conditions = requirement["when"]
            if not conditions or any(
                values.get(condition["variable"]) in condition["values"] for condition in conditions
            ):
                required.add(variable["name"])
    return required


@pytest.mark.parametrize("name", ANSWERS)
def test_the_dockerfile_runs_with_an_env_file_of_what_production_requires(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    dockerfile = (project / "docker/Dockerfile").read_text()
    header = dockerfile.split("ARG ", 1)[0]

    assert "docker run -p 8000:8000 --env-file .env.production" in header
    assert " -e " not in header
    listed = header.split("lists every variable:", 1)[1]
    entries = [entry for line in listed.splitlines() for entry in line.lstrip("# ").split()]
    values = dict(entry.partition("=")[::2] for entry in entries if "=" in entry)
    names = {entry.partition("=")[0] for entry in entries}
    assert names == required_in_production(project, values)


@pytest.mark.parametrize("name", ["defaults", "clerk-fly"])
def test_the_generated_ci_runs_the_check(generate: Callable[[str], Path], name: str) -> None:
    workflow = yaml.safe_load((generate(name) / ".github/workflows/ci.yml").read_text())

    steps = [step.get("run") for job in workflow["jobs"].values() for step in job["steps"]]

    assert "uv run omnistack check-platform" in steps


# --- a variable taken out ---------------------------------------------------------------------


@dataclass(frozen=True)
class Omission:
    """A variable taken out of one file, and the processes the check must then name."""

    answers: str
    file: str
    remove: str
    variable: str
    processes: frozenset[str]
    replacement: str = ""
    reason: str = ""
    last: bool = False

    def apply(self, project: Path) -> None:
        path = project / self.file
        text = path.read_text()
        assert self.remove in text, (self.file, self.remove)
        if self.last:
            start = text.rindex(self.remove)
            text = text[:start] + self.replacement + text[start + len(self.remove) :]
        else:
            text = text.replace(self.remove, self.replacement)
        path.write_text(text)


K8S_PRODUCTION = "deploy/k8s/overlays/production"
K8S_STAGING = "deploy/k8s/overlays/staging"
APP_ENV = "deploy/k8s/base/app-env.yaml"

OMISSIONS = {
    "render: the web service's generated key": Omission(
        "defaults",
        "render.yaml",
        "      - key: SECRET_KEY\n        generateValue: true\n",
        "SECRET_KEY",
        frozenset(
            {
                "web service my-service (api)",
                "web service my-service, preDeployCommand (migration)",
                "worker service my-service-worker (worker)",
            }
        ),
    ),
    "render: the worker's Redis": Omission(
        "defaults",
        "render.yaml",
        "      - key: REDIS_URL\n",
        "REDIS_URL",
        frozenset({"worker service my-service-worker (worker)"}),
        replacement="      - key: REDIS_URL_UNUSED\n",
        last=True,
    ),
    "render: Resend's key, required by EMAIL_PROVIDER=resend": Omission(
        "defaults",
        "render.yaml",
        "      - key: RESEND_API_KEY\n        sync: false\n",
        "RESEND_API_KEY",
        frozenset({"web service my-service (api)", "worker service my-service-worker (worker)"}),
        reason="required with the email module when EMAIL_PROVIDER=resend",
    ),
    "fly: a documented secret": Omission(
        "defaults",
        "fly.toml",
        ' DATABASE_URL="postgres://..."',
        "DATABASE_URL",
        frozenset({"process app (api)", "process worker (worker)", "release_command (migration)"}),
    ),
    "fly: the sender among the secrets": Omission(
        "defaults",
        "fly.toml",
        "#   fly secrets set EMAIL_FROM=",
        "EMAIL_FROM",
        frozenset({"process app (api)", "process worker (worker)"}),
        replacement="#   EMAIL_FROM=",
        reason="required with the email module when EMAIL_PROVIDER=resend",
    ),
    "railway: the API's preserved key": Omission(
        "defaults",
        ".railway/railway.py",
        '            "SECRET_KEY": preserve(),\n',
        "SECRET_KEY",
        frozenset(
            {
                "service my-service (api)",
                "service my-service, preDeploy (migration)",
                "service my-service-worker (worker)",
            }
        ),
    ),
    "railway: the worker's Redis": Omission(
        "defaults",
        ".railway/railway.py",
        '            "REDIS_URL": cache.env.REDIS_URL,\n',
        "REDIS_URL",
        frozenset({"service my-service-worker (worker)"}),
        last=True,
    ),
    "compose: the shared secret key": Omission(
        "defaults",
        "docker-compose.yml",
        "  SECRET_KEY: ${SECRET_KEY:?set SECRET_KEY in .env}\n",
        "SECRET_KEY",
        frozenset({"service migrate (migration)", "service api (api)", "service worker (worker)"}),
    ),
    "compose: Resend's key defaulted to empty": Omission(
        "defaults",
        "docker-compose.yml",
        "${RESEND_API_KEY:?set RESEND_API_KEY in .env}",
        "RESEND_API_KEY",
        frozenset({"service api (api)", "service worker (worker)"}),
        replacement="${RESEND_API_KEY:-}",
        reason="required with the email module when EMAIL_PROVIDER=resend",
    ),
    "kubernetes: the Secret's key for every process": Omission(
        "everything-supabase",
        APP_ENV,
        "            - name: DATABASE_URL\n",
        "DATABASE_URL",
        frozenset(
            {
                "Job everything-service-migrate (migration)",
                "Deployment everything-service (api)",
                "Deployment everything-service-worker (worker)",
            }
        ),
        replacement="            - name: DATABASE_URL_UNUSED\n",
    ),
    "kubernetes: the auth provider in the ConfigMap": Omission(
        "everything-supabase",
        "deploy/k8s/base/kustomization.yaml",
        "      - AUTH_PROVIDER=supabase\n",
        "AUTH_PROVIDER",
        frozenset(
            {
                "Deployment everything-service (api)",
                "Deployment everything-service-worker (worker)",
            }
        ),
    ),
    "kubernetes: billing's plans": Omission(
        "clerk-everywhere",
        APP_ENV,
        "            - name: BILLING_PLANS\n",
        "BILLING_PLANS",
        frozenset({"Deployment clerk-everywhere (api)"}),
        replacement="            - name: BILLING_PLANS_UNUSED\n",
    ),
}


@pytest.mark.parametrize("case", OMISSIONS)
def test_a_variable_taken_out_fails_the_check_naming_file_process_and_variable(
    generate: Callable[[str], Path], tmp_path: Path, case: str
) -> None:
    omission = OMISSIONS[case]
    project = tmp_path / "project"
    shutil.copytree(generate(omission.answers), project)
    omission.apply(project)

    result = check_platform(project)

    assert result.returncode == 1, result.stdout + result.stderr
    files = (
        [K8S_PRODUCTION, K8S_STAGING] if omission.file.startswith("deploy/") else [omission.file]
    )
    pattern = re.compile(r"^(\S+): (.+): ([A-Z_]+) is (.*?); (.*)$")
    found = [pattern.match(line) for line in result.stdout.splitlines()]
    named = {(m[1], m[2], m[3]) for m in found if m}
    assert named == {
        (file, process, omission.variable) for file in files for process in omission.processes
    }, result.stdout
    for m in found:
        assert m is not None
        assert m[5].startswith(omission.reason or "required")


def test_check_platform_resolves_every_generated_overlay_as_kubectl_does(
    generate: Callable[[str], Path], kubectl: str
) -> None:
    for name in ("everything-supabase", "clerk-everywhere"):
        project = generate(name)
        for overlay in (project / K8S_PRODUCTION, project / K8S_STAGING):
            built = subprocess.run(
                [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, check=True
            ).stdout
            theirs = _environments([obj for obj in yaml.safe_load_all(built) if obj])
            assert _environments(kustomize.build(overlay, project)) == theirs, overlay


def _environments(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The workloads' containers' env and envFrom, and the ConfigMaps' data, hashes cut."""
    text = re.sub(r'"([a-z0-9-]+-(?:config|secrets))-[a-z0-9]{10}"', r'"\1"', json.dumps(objects))
    found: dict[str, Any] = {}
    for obj in json.loads(text):
        name = f"{obj['kind']} {obj['metadata']['name']}"
        if obj["kind"] == "ConfigMap":
            found[name] = obj["data"]
        elif obj["kind"] in ("Deployment", "Job"):
            containers = obj["spec"]["template"]["spec"]["containers"]
            found[name] = [(c["name"], c.get("env"), c.get("envFrom")) for c in containers]
    return found
