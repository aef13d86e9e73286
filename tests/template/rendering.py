"""Render the Copier template from this working tree, as users render it from a release."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml

REPOSITORY = Path(__file__).resolve().parents[2]

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "tests",
    "GIT_AUTHOR_EMAIL": "tests@example.com",
    "GIT_COMMITTER_NAME": "tests",
    "GIT_COMMITTER_EMAIL": "tests@example.com",
}
"""Who commits in the tests' git repositories, on a machine with no git identity."""


def copier_defaults() -> dict[str, Any]:
    """The answers ``copier copy --defaults`` gives to the questions that shape a service."""
    questions = yaml.safe_load((REPOSITORY / "copier.yml").read_text())
    names = ("project_name", "auth_provider", "modules", "deploy_targets", "monitoring")
    return {name: questions[name]["default"] for name in names}


ANSWER_SETS: dict[str, dict[str, Any]] = {
    # What `copier copy --defaults` gives: Supabase, jobs and email, every target but k8s.
    "defaults": copier_defaults(),
    "everything-supabase": {
        "project_name": "Everything Service",
        "auth_provider": "supabase",
        "modules": ["jobs", "email", "billing", "ai"],
        "deploy_targets": ["railway", "render", "fly", "docker", "kubernetes"],
    },
    "email-without-jobs": {
        "project_name": "Mail Only",
        "auth_provider": "none",
        "modules": ["email"],
        "deploy_targets": ["docker"],
    },
    "no-auth-no-modules": {
        "project_name": "Bare Service",
        "auth_provider": "none",
        "modules": [],
        "deploy_targets": ["docker"],
    },
    "clerk-fly": {
        "project_name": "Clerk Fly",
        "auth_provider": "clerk",
        "modules": ["jobs", "billing", "ai"],
        "deploy_targets": ["fly"],
    },
}
"""The answer sets the template is tested with; later modules add their choices here."""


def git(directory: Path, *arguments: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(directory), *arguments], check=True, capture_output=True, text=True
    )
    return result.stdout


def commit(repository: Path, message: str) -> str:
    """Commit everything in ``repository`` (a test's own git repository); the commit's hash."""
    git(repository, "add", "-A")
    git(
        repository,
        "-c",
        "user.name=tests",
        "-c",
        "user.email=tests@example.com",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        message,
    )
    return git(repository, "rev-parse", "HEAD").strip()


def copy_working_tree(destination: Path) -> None:
    """Copy this working tree's files, uncommitted changes included, into ``destination``."""
    files = git(REPOSITORY, "ls-files", "--cached", "--others", "--exclude-standard").split("\n")
    for name in filter(None, files):
        source = REPOSITORY / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def extract_tree(revision: str, destination: Path) -> None:
    """Write the tree of this repository at ``revision`` (a past commit) into ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPOSITORY), "archive", "--format=tar", revision],
        check=True,
        capture_output=True,
    )
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive.stdout, check=True)


def snapshot(destination: Path) -> Path:
    """A git repository holding this working tree as it is, uncommitted changes included.

    Copier renders a git template from a commit; the tests must see the tree being tested.
    """
    copy_working_tree(destination)
    git(destination, "init", "-q", "-b", "main")
    commit(destination, "snapshot")
    return destination


def render(
    template: Path, destination: Path, answers: dict[str, Any], *, vcs_ref: str = "HEAD"
) -> Path:
    """Generate a project from ``template`` (a :func:`snapshot`) at ``vcs_ref`` with ``answers``."""
    copier.run_copy(
        str(template),
        str(destination),
        data=answers,
        defaults=True,
        unsafe=True,  # the template's task writes .env with a fresh SECRET_KEY
        vcs_ref=vcs_ref,
        quiet=True,
    )
    return destination


def renderer(
    tmp_path_factory: pytest.TempPathFactory, answer_sets: dict[str, dict[str, Any]]
) -> Callable[[str], Path]:
    """Render an answer set of ``answer_sets`` on first use; later calls reuse the project."""
    template = snapshot(tmp_path_factory.mktemp("template"))
    projects: dict[str, Path] = {}

    def project(name: str) -> Path:
        if name not in projects:
            destination = tmp_path_factory.mktemp(name) / "project"
            projects[name] = render(template, destination, answer_sets[name])
        return projects[name]

    return project
