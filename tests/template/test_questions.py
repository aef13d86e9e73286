"""copier.yml's questions: their defaults, and the answers they refuse with a reason."""

from __future__ import annotations

import configparser
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.template.rendering import REPOSITORY, render, snapshot

COPIER = Path(sys.executable).parent / "copier"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot(tmp_path_factory.mktemp("template"))


def test_the_default_modules_stay_jobs_and_email(template: Path, tmp_path: Path) -> None:
    project = render(template, tmp_path / "project", {})

    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["modules"] == ["jobs", "email"]
    assert not (project / "tests" / "test_billing.py").exists()
    assert not (project / "tests" / "test_chat.py").exists()


def test_billing_without_an_auth_provider_is_refused_with_the_reason(
    template: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="Billing needs an auth provider") as refused:
        render(template, tmp_path / "project", {"auth_provider": "none", "modules": ["billing"]})

    assert "supabase or clerk" in str(refused.value)
    assert not (tmp_path / "project").exists()


@pytest.mark.parametrize("provider", ["supabase", "clerk"])
def test_billing_with_an_auth_provider_installs_the_module(
    template: Path, tmp_path: Path, provider: str
) -> None:
    project = render(
        template, tmp_path / "project", {"auth_provider": provider, "modules": ["billing"]}
    )

    assert "BillingModule()" in (project / "app" / "main.py").read_text()
    assert "billing" in (project / "pyproject.toml").read_text().split("omnistack-core[")[1]
    assert (project / "tests" / "test_billing.py").is_file()


def test_ai_without_an_auth_provider_is_refused_with_the_reason(
    template: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="AI needs an auth provider") as refused:
        render(template, tmp_path / "project", {"auth_provider": "none", "modules": ["ai"]})

    assert "supabase or clerk" in str(refused.value)
    assert not (tmp_path / "project").exists()


@pytest.mark.parametrize("provider", ["supabase", "clerk"])
def test_ai_with_an_auth_provider_installs_the_module_and_its_route(
    template: Path, tmp_path: Path, provider: str
) -> None:
    project = render(template, tmp_path / "project", {"auth_provider": provider, "modules": ["ai"]})

    assert "AIModule()" in (project / "app" / "main.py").read_text()
    requirement = (project / "pyproject.toml").read_text().split("omnistack-core[")[1]
    assert "ai" in requirement.split("]")[0].split(",")
    assert "chat.router" in (project / "app" / "api" / "v1" / "__init__.py").read_text()
    assert (project / "tests" / "test_chat.py").is_file()
    # The module's tables come with its revisions, a branch Alembic finds through alembic.ini.
    assert "omnistack_core.ai:migrations" in version_locations(project)


def test_without_ai_there_is_no_chat_route(template: Path, tmp_path: Path) -> None:
    project = render(template, tmp_path / "project", {"modules": ["jobs"]})

    assert not (project / "app" / "api" / "v1" / "chat.py").exists()
    assert not (project / "tests" / "test_chat.py").exists()
    assert "omnistack_core.ai:migrations" not in version_locations(project)
    assert version_locations(project) == [
        "%(here)s/migrations/versions",
        "omnistack_core.auth:migrations",
        "omnistack_core.jobs:migrations",
    ]


def version_locations(project: Path) -> list[str]:
    """The folders of revisions the project's alembic.ini lists, one a line."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(project / "alembic.ini")
    return config["alembic"]["version_locations"].split()


def readme_data_example() -> list[str]:
    readme = (REPOSITORY / "README.md").read_text()
    match = re.search(r"<!-- data-example -->\n```bash\n(.+?)\n```", readme)
    assert match is not None, "README.md has no data-example command"
    return shlex.split(match.group(1))


def test_the_readme_data_example_answers_multiselect_questions_with_lists(
    template: Path, tmp_path: Path
) -> None:
    command = readme_data_example()
    assert command[:3] == ["uvx", "copier", "copy"]
    *options, _, _ = command[3:]  # the template (the checkout) and the destination
    project = tmp_path / "service"

    subprocess.run(
        [str(COPIER), "copy", *options, str(template), str(project)],
        check=True,
        capture_output=True,
        text=True,
    )

    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    given = dict(
        options[index + 1].split("=", 1)
        for index, option in enumerate(options)
        if option == "--data"
    )
    assert {"modules", "deploy_targets"} <= given.keys()
    for key, value in given.items():
        assert answers[key] == yaml.safe_load(value), key
    assert isinstance(answers["modules"], list)
    assert isinstance(answers["deploy_targets"], list)


def test_the_console_is_on_by_default_and_off_when_declined(template: Path, tmp_path: Path) -> None:
    default = render(template, tmp_path / "default", {})
    declined = render(template, tmp_path / "declined", {"console": False})

    assert "ConsoleModule()" in (default / "app" / "main.py").read_text()
    assert "console" in (default / "pyproject.toml").read_text().split("omnistack-core[")[1]
    assert "## Operator console" in (default / "README.md").read_text()
    assert "CONSOLE_ENABLED=" in (default / ".env.example").read_text()
    assert "ConsoleModule" not in (declined / "app" / "main.py").read_text()
    assert "console" not in (declined / "pyproject.toml").read_text().split("omnistack-core[")[1]
    assert "/console" not in (declined / "README.md").read_text()
