"""A generated service's own docs (README.md, docs/deploy-railway.md) against what they describe.

Each answer set is rendered from a snapshot of this working tree. The README is read as a user
reads it: its sections, the variables and secrets it names, the commands it gives; each is held
to the generated files, the workflows, the Railway graph, or what ``omnistack env`` says the
generated app requires.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.template.rendering import ANSWER_SETS, REPOSITORY, renderer
from tests.template.test_platform_files import railway_graph

ANSWERS: dict[str, dict[str, Any]] = {**ANSWER_SETS, "defaults": {}}

# `README.md, "Email"` in a generated file's comment, or `README.md`, "Email" in a table.
FILE_REFERENCE = re.compile(r'README\.md`?, "([^"]+)"')
# `see "Email"` and `the production variables of "Configure it"` inside the README itself.
SELF_REFERENCE = re.compile(r'(?:see|of) "([^"]+)"')
VARIABLE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")
WORKER_COMMAND = "arq app.jobs.worker.WorkerSettings"
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
# The generated files that point into the README; the rest of the tree is code and lock files.
SKIPPED = {".git", ".venv", "uv.lock"}


@pytest.fixture(scope="module")
def generate(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Render an answer set on first use; later tests of the module reuse the project."""
    return renderer(tmp_path_factory, ANSWERS)


def answers(project: Path) -> dict[str, Any]:
    """The answers the project was generated with, defaults included."""
    loaded: dict[str, Any] = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return loaded


def sections(project: Path) -> dict[str, str]:
    """The README's sections by title (`## Jobs` is `Jobs`)."""
    readme = (project / "README.md").read_text()
    return {
        part.split("\n", 1)[0].strip(): part.split("\n", 1)[1]
        for part in re.split(r"^## ", readme, flags=re.M)[1:]
    }


def names_in(text: str) -> set[str]:
    """The variables a text names in code spans."""
    return {span for span in re.findall(r"`([^`\n]+)`", text) if VARIABLE.fullmatch(span)}


@pytest.mark.parametrize("name", ANSWERS)
def test_every_readme_section_the_generated_files_point_to_exists(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    titles = sections(project).keys()
    pointed: dict[str, set[str]] = {}
    for path in project.rglob("*"):
        if not path.is_file() or SKIPPED & set(path.relative_to(project).parts):
            continue
        text = path.read_text(errors="replace")
        pattern = SELF_REFERENCE if path.name == "README.md" else FILE_REFERENCE
        for title in pattern.findall(text):
            pointed.setdefault(title, set()).add(str(path.relative_to(project)))
    missing = {title: files for title, files in pointed.items() if title not in titles}

    assert not missing
    if "email" in answers(project)["modules"]:
        # The platform files send their readers to the Email section.
        assert len(pointed["Email"] - {"README.md"}) >= 1


@pytest.mark.parametrize("name", ANSWERS)
def test_the_readme_names_exactly_the_secrets_the_workflows_read(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    workflows = "\n".join(p.read_text() for p in (project / ".github/workflows").glob("*.yml"))
    read = set(re.findall(r"secrets\.([A-Z][A-Z0-9_]*)", workflows)) - {"GITHUB_TOKEN"}
    paragraph = sections(project)["Deploy it"].split("GitHub Actions:", 1)[1]

    assert names_in(paragraph) == read


def required_in_production(variable: dict[str, Any], values: dict[str, str]) -> bool:
    """Whether ``omnistack env --format json``'s ``variable`` is required in production."""
    for requirement in variable["required"]:
        if "production" not in requirement["environments"]:
            continue
        if not requirement["when"]:
            return True
        for condition in requirement["when"]:
            value = values.get(condition["variable"], "")
            prefix = condition["prefix"]
            if value in condition["values"] or (prefix and value.startswith(prefix)):
                return True
    return False


@pytest.mark.parametrize("name", ANSWERS)
def test_the_readme_lists_what_omnistack_env_says_production_requires(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    given = answers(project)
    # The service's own variables never leak in from the test run.
    environment = {
        key: value
        for key, value in os.environ.items()
        if key in ("PATH", "HOME", "LANG", "TMPDIR") or key.startswith("LC_")
    }
    listed = subprocess.run(
        [sys.executable, "-m", "omnistack_core.cli", "env", "--format", "json"],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    variables = json.loads(listed.stdout)["variables"]
    # What the platform files set: the auth provider answered, and Resend for email.
    values = {"AUTH_PROVIDER": given["auth_provider"], "EMAIL_PROVIDER": "resend"}
    required = {v["name"] for v in variables if required_in_production(v, values)}
    configure = sections(project)["Configure it"]
    items = configure.split("refuses to start without:", 1)[1].split("\n\n", 2)[1]

    assert names_in(items) == required


@pytest.mark.parametrize(
    "name", [n for n, a in ANSWERS.items() if "railway" in a.get("deploy_targets", ["railway"])]
)
def test_the_railway_guide_counts_what_railway_py_declares(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    resources = railway_graph(project)["resources"]
    guide = (project / "docs/deploy-railway.md").read_text()
    declares = guide.split("## What `.railway/railway.py` declares", 1)[1]
    declares = declares.split("The API service is configured", 1)[0]
    counted = re.search(r"holding (\w+) resources: (\w+) services? and (\w+)\s+databases", declares)
    assert counted is not None, "the guide does not count the resources"
    table = [line for line in declares.splitlines() if line.startswith("| `")]

    def of_type(kind: str) -> int:
        return sum(resource["type"] == kind for resource in resources)

    assert NUMBERS[counted.group(1)] == len(resources)
    assert NUMBERS[counted.group(2)] == of_type("service")
    assert NUMBERS[counted.group(3)] == of_type("database")
    assert ("declares no other volume" in declares) is (of_type("volume") == 0)
    assert {re.findall(r"`([^`]+)`", row)[0] for row in table} == {r["name"] for r in resources}


@pytest.mark.parametrize(
    "name", [n for n, a in ANSWERS.items() if "jobs" in a.get("modules", ["jobs"])]
)
def test_the_readme_jobs_section_gives_the_worker_command_every_platform_runs(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    jobs = sections(project)["Jobs"]
    platform_files = [
        path
        for path in [
            project / "fly.toml",
            project / "render.yaml",
            project / "docker-compose.yml",
            project / ".railway/railway.py",
            project / "deploy/k8s/base/worker-deployment.yaml",
        ]
        if path.is_file()
    ]

    assert f"uv run {WORKER_COMMAND}" in jobs
    assert "omnistack worker-check" in jobs
    assert "`JOBS`" in jobs
    assert "JOBS: Jobs = [" in (project / "app/jobs/tasks.py").read_text()
    assert "JobsModule(jobs=JOBS)" in (project / "app/main.py").read_text()
    assert "WorkerSettings = worker_settings(app)" in (project / "app/jobs/worker.py").read_text()
    assert platform_files
    for path in platform_files:
        assert "app.jobs.worker.WorkerSettings" in path.read_text(), path


@pytest.mark.parametrize(
    "name", [n for n, a in ANSWERS.items() if "jobs" in a.get("modules", ["jobs"])]
)
def test_the_readme_deploy_steps_mention_the_worker_on_each_target(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    deploy = sections(project)["Deploy it"]
    titles = {
        "railway": "**Railway**",
        "render": "**Render**",
        "fly": "**Fly.io**",
        "kubernetes": "**Kubernetes**",
        "docker": "**Docker**",
    }
    for target in answers(project)["deploy_targets"]:
        paragraph = deploy.split(titles[target], 1)[1].split("\n\n", 1)[0]
        assert "worker" in paragraph, target


@pytest.mark.parametrize(
    "name",
    [
        n
        for n, a in ANSWERS.items()
        if "jobs" in a.get("modules", ["jobs"]) and "render" in a.get("deploy_targets", ["render"])
    ],
)
def test_the_render_docs_name_what_the_worker_asks_for_itself(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    blueprint = yaml.safe_load((project / "render.yaml").read_text())
    [worker] = [service for service in blueprint["services"] if service["type"] == "worker"]
    asked = {entry["key"] for entry in worker["envVars"] if entry.get("sync") is False}
    page = (REPOSITORY / "docs/deployment/render.md").read_text()
    on_the_page = page.split("The worker (with `jobs`)", 1)[1].split("\n\n", 1)[0]
    in_the_readme = sections(project)["Deploy it"].split("**Render**", 1)[1].split("\n\n", 1)[0]

    assert asked
    assert asked <= names_in(on_the_page)
    assert asked <= names_in(in_the_readme)
