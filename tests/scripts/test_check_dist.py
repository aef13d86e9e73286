"""scripts/check_dist.py: the built distributions pass, and doctored ones fail with the reason."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from scripts import check_dist

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """This tree's wheel and sdist, built as a release builds them."""
    dist = tmp_path_factory.mktemp("dist")
    uv = shutil.which("uv") or "uv"
    subprocess.run(
        [uv, "build", "--quiet", "--out-dir", str(dist), str(REPOSITORY)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = dist.glob("*.whl")
    [sdist] = dist.glob("*.tar.gz")
    return wheel, sdist


def doctor_wheel(
    wheel: Path, target: Path, keep: Callable[[str], bool], add: dict[str, bytes] | None = None
) -> Path:
    """A copy of ``wheel`` holding only the files ``keep`` accepts, plus ``add``."""
    doctored = target / wheel.name
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(doctored, "w") as copy:
        for name in source.namelist():
            if keep(name):
                copy.writestr(name, source.read(name))
        for name, data in (add or {}).items():
            copy.writestr(name, data)
    return doctored


def doctor_sdist(
    sdist: Path, target: Path, keep: Callable[[str], bool], add: dict[str, bytes] | None = None
) -> Path:
    """A copy of ``sdist`` holding only the members ``keep`` accepts, plus ``add``."""
    doctored = target / sdist.name
    root = sdist.name.removesuffix(".tar.gz")
    with tarfile.open(sdist) as source, tarfile.open(doctored, "w:gz") as copy:
        for member in source.getmembers():
            if keep(member.name.removeprefix(root + "/")):
                copy.addfile(member, source.extractfile(member) if member.isfile() else None)
        for name, data in (add or {}).items():
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size = len(data)
            copy.addfile(info, io.BytesIO(data))
    return doctored


def test_the_built_wheel_and_sdist_pass(built: tuple[Path, Path]) -> None:
    wheel, sdist = built

    assert check_dist.wheel_problems(wheel) == []
    assert check_dist.sdist_problems(sdist) == []


def test_a_wheel_without_a_module_fails_naming_it(built: tuple[Path, Path], tmp_path: Path) -> None:
    wheel = doctor_wheel(built[0], tmp_path, lambda name: name != "omnistack_core/jobs/retry.py")

    assert check_dist.wheel_problems(wheel) == [
        f"{wheel.name}: omnistack_core/jobs/retry.py is missing"
    ]


def test_a_wheel_without_py_typed_fails(built: tuple[Path, Path], tmp_path: Path) -> None:
    wheel = doctor_wheel(built[0], tmp_path, lambda name: not name.endswith("py.typed"))

    assert check_dist.wheel_problems(wheel) == [f"{wheel.name}: omnistack_core/py.typed is missing"]


def test_a_wheel_without_package_data_fails(built: tuple[Path, Path], tmp_path: Path) -> None:
    wheel = doctor_wheel(built[0], tmp_path, lambda name: "/templates/" not in name)

    problems = check_dist.wheel_problems(wheel)

    assert f"{wheel.name}: omnistack_core/email/templates/welcome.html is missing" in problems


def test_a_wheel_carrying_tests_fails(built: tuple[Path, Path], tmp_path: Path) -> None:
    wheel = doctor_wheel(built[0], tmp_path, lambda _: True, {"tests/test_app.py": b""})

    assert check_dist.wheel_problems(wheel) == [
        f"{wheel.name}: tests/test_app.py does not belong in the wheel"
    ]


def test_an_sdist_without_the_changelog_or_a_module_fails(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    sdist = doctor_sdist(
        built[1], tmp_path, lambda name: name not in ("CHANGELOG.md", "omnistack_core/app.py")
    )

    assert check_dist.sdist_problems(sdist) == [
        f"{sdist.name}: CHANGELOG.md is missing",
        f"{sdist.name}: omnistack_core/app.py is missing",
    ]


def test_an_sdist_carrying_the_template_fails(built: tuple[Path, Path], tmp_path: Path) -> None:
    sdist = doctor_sdist(built[1], tmp_path, lambda _: True, {"template/copier.yml": b""})

    assert check_dist.sdist_problems(sdist) == [
        f"{sdist.name}: template/copier.yml does not belong in the sdist"
    ]


def test_the_command_fails_on_a_doctored_dist_and_says_why(
    built: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doctor_wheel(built[0], tmp_path, lambda name: not name.endswith("py.typed"))
    shutil.copy(built[1], tmp_path)

    assert check_dist.main([str(tmp_path)]) == 1
    assert "omnistack_core/py.typed is missing" in capsys.readouterr().out


def test_the_command_passes_a_good_dist_and_summarises_it(
    built: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path in built:
        shutil.copy(path, tmp_path)

    assert check_dist.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "py.typed" in out
    assert "CHANGELOG.md, LICENSE, PKG-INFO, README.md, omnistack_core, pyproject.toml" in out


def test_the_command_fails_when_the_version_is_not_the_tags(
    built: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path in built:
        shutil.copy(path, tmp_path)

    assert check_dist.main([str(tmp_path), "--expect-version", "v9.9.9"]) == 1
    assert "the versions differ" in capsys.readouterr().out


def test_every_module_is_imported_with_extras_the_project_declares(
    built: tuple[Path, Path],
) -> None:
    declared = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    modules = check_dist.modules(built[0])

    assert "omnistack_core.jobs" in modules
    assert "omnistack_core.jobs.__init__" not in modules
    assert check_dist.extra_of("omnistack_core.settings") == ""
    assert check_dist.extra_of("omnistack_core.email.jobs") == "email,jobs"
    assert check_dist.extra_of("omnistack_core.email.sender") == "email"
    for module in modules:
        extras = check_dist.extra_of(module)
        assert set(filter(None, extras.split(","))) <= declared.keys(), module
