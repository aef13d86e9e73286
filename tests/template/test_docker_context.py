"""What a generated service hands ``docker build``: a wheel of the library only when needed.

A service wired to a local checkout has a uv.lock pointing outside the build context, so the
generation puts a wheel of the checkout in ``docker/wheels/``; a service on a released
omnistack-core gets nothing extra. ``tests/container/`` builds both kinds of context.
"""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.template.rendering import ANSWER_SETS, REPOSITORY, render, snapshot


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot(tmp_path_factory.mktemp("template"))


def test_a_service_on_a_release_gets_no_wheel(
    template: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    project = render(template, tmp_path_factory.mktemp("release") / "s", ANSWER_SETS["defaults"])

    assert not (project / "docker/wheels").exists()
    assert "omnistack-core[" in (project / "pyproject.toml").read_text()


def test_a_service_on_a_local_checkout_gets_one_wheel_of_it_in_the_build_context(
    template: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    answers = {**ANSWER_SETS["defaults"], "omnistack_core_version": f"@ {REPOSITORY.as_uri()}"}
    project = render(template, tmp_path_factory.mktemp("local") / "s", answers)

    [wheel] = (project / "docker/wheels").glob("*.whl")
    assert wheel.name.startswith("omnistack_core-")
    with zipfile.ZipFile(wheel) as archive:
        assert "omnistack_core/__init__.py" in archive.namelist()
    # In the Docker build context, out of git.
    ignored = [line.strip() for line in (project / ".dockerignore").read_text().splitlines()]
    assert not {"docker", "docker/", "docker/wheels", "*.whl"} & set(ignored)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    checked = subprocess.run(["git", "check-ignore", "-q", str(wheel)], cwd=project, check=False)
    assert checked.returncode == 0
