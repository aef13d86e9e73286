"""The version comes from git tags: a `v1.2.3` tag builds 1.2.3, later commits build dev versions.

The release workflow runs on `v*` tags and checks the built version against the tag, so this
is the contract between the two.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
UV = shutil.which("uv") or "uv"


IDENTITY = ("-c", "user.name=tests", "-c", "user.email=tests@example.com")


def git(directory: Path, *arguments: str) -> None:
    subprocess.run(
        ["git", "-C", str(directory), *IDENTITY, *arguments], check=True, capture_output=True
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A fresh repository holding this tree's committed and uncommitted files, one commit."""
    listed = subprocess.run(
        [
            "git",
            "-C",
            str(REPOSITORY),
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        if (REPOSITORY / name).is_file():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPOSITORY / name, tmp_path / name)
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "snapshot")
    return tmp_path


def wheel_version(checkout: Path) -> str:
    dist = checkout / "dist"
    subprocess.run(
        [UV, "build", "--wheel", "--quiet", "--out-dir", str(dist), str(checkout)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = dist.glob("*.whl")
    shutil.rmtree(dist)
    return wheel.name.split("-")[1]


def test_a_version_tag_is_the_version(checkout: Path) -> None:
    git(checkout, "tag", "v9.8.7")

    assert wheel_version(checkout) == "9.8.7"


def test_a_commit_after_the_tag_builds_the_next_dev_version(checkout: Path) -> None:
    git(checkout, "tag", "v9.8.7")
    git(checkout, "commit", "-q", "--allow-empty", "-m", "after the release")

    assert wheel_version(checkout).startswith("9.8.8.dev1+g")
