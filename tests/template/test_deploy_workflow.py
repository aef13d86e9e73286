"""The generated deploy workflow (`.github/workflows/deploy.yml`): what each environment gets.

Each answer set is rendered from a snapshot of this working tree. The Railway and Render steps'
shell runs here as GitHub runs it (`bash -e`), with the step's `env` filled from fake secrets
and with stand-ins for `uv` (which runs the Railway CLI) and `curl` (Render's API) first on
`PATH`: each records its call, so a test sees which services are deployed and in which order.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.template.rendering import ANSWER_SETS, renderer

ANSWERS: dict[str, dict[str, Any]] = {
    # jobs and email, on Railway, Render, Fly.io and Docker.
    "defaults": ANSWER_SETS["defaults"],
    "platforms-without-jobs": {
        "project_name": "Open Platforms",
        "auth_provider": "none",
        "modules": ["email"],
        "deploy_targets": ["railway", "render", "fly"],
    },
}
ENVIRONMENTS = ["staging", "production"]
SECRET = re.compile(r"\$\{\{\s*secrets\.(?P<name>[A-Z0-9_]+)\s*\}\}")
RENDER_CALL = re.compile(r"https://api\.render\.com/v1/services/(?P<path>\S+)")
COMMIT = "0123456789abcdef0123456789abcdef01234567"

# Stand-ins, each appending its arguments to $CALLS as one line. The Railway CLI fails for the
# service named in $FAIL_SERVICE; Render answers every call with deploy dep-1 in $RENDER_STATUS.
FAKE_UV = """#!/bin/sh
echo "uv $*" >> "$CALLS"
case "$*" in *"--service $FAIL_SERVICE") exit 1 ;; esac
"""
FAKE_CURL = """#!/bin/sh
echo "curl $*" >> "$CALLS"
printf '{"id": "dep-1", "status": "%s"}\\n' "${RENDER_STATUS:-live}"
"""


@pytest.fixture(scope="module")
def generate(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Render an answer set on first use; later tests of the module reuse the project."""
    return renderer(tmp_path_factory, ANSWERS)


def slug(project: Path) -> str:
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return str(answers["project_slug"])


def deploy_step(project: Path, environment: str, name: str) -> dict[str, Any]:
    workflow = yaml.safe_load((project / ".github/workflows/deploy.yml").read_text())
    step: dict[str, Any]
    [step] = [
        s for s in workflow["jobs"][f"deploy-{environment}"]["steps"] if s.get("name") == name
    ]
    return step


@dataclass
class StepRun:
    """How a step's shell ended, and the calls the stand-ins recorded."""

    returncode: int
    output: str
    calls: list[str]

    def render_calls(self) -> list[str]:
        """The Render API paths called, in order (`srv-web/deploys`, `srv-web/deploys/dep-1`)."""
        return [match["path"] for call in self.calls for match in RENDER_CALL.finditer(call)]


def run_step(
    step: dict[str, Any], tmp_path: Path, secrets: dict[str, str], **environ: str
) -> StepRun:
    """Run ``step`` with ``secrets`` (a secret not given is empty, as on GitHub)."""
    fakes = tmp_path / "bin"
    fakes.mkdir(parents=True, exist_ok=True)
    for name, text in {"uv": FAKE_UV, "curl": FAKE_CURL}.items():
        (fakes / name).write_text(text)
        (fakes / name).chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("")
    env = {
        key: SECRET.sub(lambda m: secrets.get(m["name"], ""), str(value))
        for key, value in step["env"].items()
    }
    assert not any("${{" in value for value in env.values()), env
    script = tmp_path / "step.sh"
    script.write_text(step["run"])
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-e", str(script)],
        env={
            "PATH": f"{fakes}:/usr/bin:/bin",
            "GITHUB_SHA": COMMIT,
            "CALLS": str(calls),
            **env,
            **environ,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return StepRun(result.returncode, result.stdout + result.stderr, calls.read_text().splitlines())


@pytest.fixture(scope="module")
def jq() -> None:
    """The Render step reads Render's answers with jq, as GitHub's runners have it."""
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed: the Render step's script needs it")


def render_secrets(environment: str, *, worker: bool = True) -> dict[str, str]:
    prefix = f"RENDER_{environment.upper()}"
    secrets = {"RENDER_API_KEY": "rnd_test", f"{prefix}_SERVICE_ID": "srv-web"}
    if worker:
        secrets[f"{prefix}_WORKER_SERVICE_ID"] = "srv-worker"
    return secrets


# --- Railway ----------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_railway_deploys_the_worker_after_the_api(
    generate: Callable[[str], Path], environment: str, tmp_path: Path
) -> None:
    project = generate("defaults")
    step = deploy_step(project, environment, "Deploy to Railway")

    run = run_step(step, tmp_path, {"RAILWAY_TOKEN": "project-token"})

    assert run.returncode == 0, run.output
    railway = "uv run --no-project --with-requirements .railway/requirements.txt railway up --ci"
    assert run.calls == [
        f"{railway} --service {slug(project)}",
        f"{railway} --service {slug(project)}-worker",
    ]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_railway_leaves_the_worker_alone_when_the_api_deploy_fails(
    generate: Callable[[str], Path], environment: str, tmp_path: Path
) -> None:
    project = generate("defaults")
    step = deploy_step(project, environment, "Deploy to Railway")

    run = run_step(step, tmp_path, {"RAILWAY_TOKEN": "t"}, FAIL_SERVICE=slug(project))

    assert run.returncode != 0
    assert len(run.calls) == 1
    assert run.calls[0].endswith(f"--service {slug(project)}")


# --- Render -----------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_render_deploys_the_worker_once_the_web_service_is_live(
    generate: Callable[[str], Path], environment: str, tmp_path: Path, jq: None
) -> None:
    step = deploy_step(generate("defaults"), environment, "Deploy to Render")

    run = run_step(step, tmp_path, render_secrets(environment))

    assert run.returncode == 0, run.output
    assert run.render_calls() == [
        "srv-web/deploys",
        "srv-web/deploys/dep-1",
        "srv-worker/deploys",
        "srv-worker/deploys/dep-1",
    ]
    posts = [call for call in run.calls if "-X POST" in call]
    assert len(posts) == 2
    assert all(f'"commitId": "{COMMIT}"' in call for call in posts)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_render_reads_the_worker_id_secret_and_fails_before_any_deploy_without_it(
    generate: Callable[[str], Path], environment: str, tmp_path: Path, jq: None
) -> None:
    step = deploy_step(generate("defaults"), environment, "Deploy to Render")

    run = run_step(step, tmp_path, render_secrets(environment, worker=False))

    assert run.returncode != 0
    secret = f"RENDER_{environment.upper()}_WORKER_SERVICE_ID"
    assert f"::error::Set the {secret} secret" in run.output
    assert run.calls == []


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_render_leaves_the_worker_alone_when_the_web_deploy_fails(
    generate: Callable[[str], Path], environment: str, tmp_path: Path, jq: None
) -> None:
    step = deploy_step(generate("defaults"), environment, "Deploy to Render")

    run = run_step(step, tmp_path, render_secrets(environment), RENDER_STATUS="update_failed")

    assert run.returncode != 0
    assert "::error::" in run.output
    assert "ended update_failed" in run.output
    assert run.render_calls() == ["srv-web/deploys", "srv-web/deploys/dep-1"]


# --- Fly.io -----------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_fly_updates_the_worker_with_the_api_in_one_deploy(
    generate: Callable[[str], Path], environment: str
) -> None:
    project = generate("defaults")
    step = deploy_step(project, environment, "Deploy to Fly.io")
    processes = tomllib.loads((project / "fly.toml").read_text())["processes"]

    # One app whose process groups are the API and the worker; a deploy restricted to some
    # groups (--process-groups) would leave the others on the previous image.
    assert set(processes) == {"app", "worker"}
    assert step["run"].count("flyctl deploy") == 1
    assert "--process-groups" not in step["run"]


# --- without jobs -----------------------------------------------------------------------------


def test_without_jobs_the_workflow_mentions_no_worker(generate: Callable[[str], Path]) -> None:
    workflow = (generate("platforms-without-jobs") / ".github/workflows/deploy.yml").read_text()

    assert "worker" not in workflow.lower()


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_without_jobs_each_platform_deploys_the_api_alone(
    generate: Callable[[str], Path], environment: str, tmp_path: Path, jq: None
) -> None:
    project = generate("platforms-without-jobs")
    railway = deploy_step(project, environment, "Deploy to Railway")
    render = deploy_step(project, environment, "Deploy to Render")

    railway_run = run_step(railway, tmp_path / "railway", {"RAILWAY_TOKEN": "t"})
    render_run = run_step(render, tmp_path / "render", render_secrets(environment, worker=False))

    assert railway_run.returncode == 0, railway_run.output
    assert [call.rsplit(" ", 1)[1] for call in railway_run.calls] == [slug(project)]
    assert render_run.returncode == 0, render_run.output
    assert render_run.render_calls() == ["srv-web/deploys", "srv-web/deploys/dep-1"]
