"""Check built distributions before they are published.

    python scripts/check_dist.py DIST_DIR [--expect-version X.Y.Z] [--imports]

The wheel must hold every file of the package in this source tree (each module, ``py.typed``,
the email templates) and the generated ``_version.py``, and nothing outside the package and
its ``.dist-info``: no tests, no template. The sdist must hold what a rebuild needs
(``pyproject.toml``, ``LICENSE``, ``README.md``, ``CHANGELOG.md``, ``PKG-INFO``, the package
with ``_version.py``, so that a rebuild without git keeps the version) and nothing else.
With ``--imports``, the wheel is installed into a fresh virtualenv per extra and every module
is imported there with only its own extra, which proves each extra brings what its modules
import. Exit status 1, with one line per problem, when anything is wrong.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path

PACKAGE = "omnistack_core"
SOURCE = Path(__file__).resolve().parents[1]

SDIST_FILES = frozenset({"pyproject.toml", "LICENSE", "README.md", "CHANGELOG.md", "PKG-INFO"})
# hatchling adds the VCS ignore file to every sdist.
SDIST_OPTIONAL = frozenset({".gitignore"})

MODULE_BRANCHES = ("ai", "auth", "billing", "email", "jobs")

# The extras each module is imported with: the longest matching prefix wins, and modules that
# match none must import with no extra at all.
EXTRAS = {
    f"{PACKAGE}.ai": "ai",
    f"{PACKAGE}.auth": "auth",
    f"{PACKAGE}.billing": "billing",
    f"{PACKAGE}.cli.http_bounds": "serve",
    f"{PACKAGE}.cli.serve_workers": "serve",
    f"{PACKAGE}.console": "console",
    # Each console section acts through its module, so it needs that module's extra too.
    **{
        f"{PACKAGE}.console.{section}_pages": f"console,{section}"
        for section in ("ai", "billing", "email", "jobs")
    },
    f"{PACKAGE}.db.adoption": "migrations",
    f"{PACKAGE}.db.lint": "migrations",
    f"{PACKAGE}.db.migrations": "migrations",
    f"{PACKAGE}.email": "email",
    # Queued sends are jobs: they need both.
    f"{PACKAGE}.email.jobs": "email,jobs",
    f"{PACKAGE}.jobs": "jobs",
    f"{PACKAGE}.observability.db_metrics": "observability",
    f"{PACKAGE}.observability.metrics": "observability",
    f"{PACKAGE}.testing": "all",
    # A module's revisions run under Alembic, inside the module's package.
    **{f"{PACKAGE}.{module}.migrations": f"{module},migrations" for module in MODULE_BRANCHES},
}
# The test helpers are a pytest plugin and fakes of every provider: pytest comes from the
# user's own test dependencies, not from an extra.
ALSO_INSTALLED = {"all": ("pytest",)}

_IMPORT_EACH = """
import importlib, sys
failed = 0
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed += 1
        print(f"{name}: {type(exc).__name__}: {exc}")
sys.exit(1 if failed else 0)
"""


def package_files(source: Path = SOURCE) -> set[str]:
    """The package's files in the source tree, as archive paths (``omnistack_core/...``)."""
    root = source / PACKAGE
    return {
        f"{PACKAGE}/{path.relative_to(root).as_posix()}"
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def required_package_files(source: Path = SOURCE) -> set[str]:
    """What every distribution must carry of the package, generated files included."""
    return package_files(source) | {f"{PACKAGE}/py.typed", f"{PACKAGE}/_version.py"}


def distribution_version(path: Path) -> str:
    """The version in a wheel's or an sdist's file name."""
    if path.suffix == ".whl":
        return path.name.split("-")[1]
    return path.name.removesuffix(".tar.gz").rsplit("-", 1)[1]


def wheel_problems(wheel: Path, source: Path = SOURCE) -> list[str]:
    """What is wrong with ``wheel``'s contents, one line each; empty when nothing is."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    problems = [
        f"{wheel.name}: {name} is missing"
        for name in sorted(required_package_files(source) - names)
    ]
    problems += [
        f"{wheel.name}: {name} does not belong in the wheel"
        for name in sorted(names)
        if name.split("/")[0] != PACKAGE and not name.split("/")[0].endswith(".dist-info")
    ]
    if not any(name.endswith(".dist-info/licenses/LICENSE") for name in names):
        problems.append(f"{wheel.name}: the LICENSE is missing from .dist-info/licenses/")
    return problems


def sdist_problems(sdist: Path, source: Path = SOURCE) -> list[str]:
    """What is wrong with ``sdist``'s contents, one line each; empty when nothing is."""
    with tarfile.open(sdist) as archive:
        members = [member.name for member in archive.getmembers() if member.isfile()]
    root = sdist.name.removesuffix(".tar.gz") + "/"
    outside = [name for name in members if not name.startswith(root)]
    names = {name.removeprefix(root) for name in members if name.startswith(root)}
    required = SDIST_FILES | required_package_files(source)
    problems = [f"{sdist.name}: {name} is outside {root}" for name in outside]
    problems += [f"{sdist.name}: {name} is missing" for name in sorted(required - names)]
    problems += [
        f"{sdist.name}: {name} does not belong in the sdist"
        for name in sorted(names - required - SDIST_OPTIONAL)
    ]
    return problems


def modules(wheel: Path) -> list[str]:
    """The importable modules in ``wheel``, packages by their own name."""
    with zipfile.ZipFile(wheel) as archive:
        files = [name for name in archive.namelist() if name.endswith(".py")]
    return sorted(
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for name in files
    )


def extra_of(module: str) -> str:
    """The extras ``module`` is imported with, comma-separated (``""`` for none)."""
    matches = [prefix for prefix in EXTRAS if module == prefix or module.startswith(prefix + ".")]
    return EXTRAS[max(matches, key=len)] if matches else ""


def import_problems(wheel: Path, work: Path) -> list[str]:
    """Import every module of ``wheel``, each in a fresh virtualenv with only its extra."""
    uv = shutil.which("uv")
    if uv is None:
        return ["uv is not on PATH: it makes the virtualenvs"]
    by_extra: dict[str, list[str]] = defaultdict(list)
    for module in modules(wheel):
        by_extra[extra_of(module)].append(module)
    problems = []
    for extra, names in sorted(by_extra.items()):
        label = f"[{extra}]" if extra else "no extra"
        venv = work / (extra.replace(",", "-") or "base")
        python = venv / "bin" / "python"
        requirement = f"{wheel}[{extra}]" if extra else str(wheel)
        subprocess.run([uv, "venv", "--quiet", str(venv)], check=True)
        install = [uv, "pip", "install", "--quiet", "--python", str(python), requirement]
        subprocess.run([*install, *ALSO_INSTALLED.get(extra, ())], check=True)
        result = subprocess.run(
            [str(python), "-c", _IMPORT_EACH, *names], capture_output=True, text=True, check=False
        )
        if result.returncode:
            lines = (result.stdout + result.stderr).strip().splitlines()
            problems += [f"with {label}: {line}" for line in lines]
        else:
            print(f"imported {len(names):3} modules with {label}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Check the one wheel and one sdist in a directory; 1 when there are problems."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dist", type=Path, help="the directory uv build wrote to")
    parser.add_argument("--expect-version", help="the version both must have (a tag's)")
    parser.add_argument("--imports", action="store_true", help="import every module with its extra")
    options = parser.parse_args(argv)

    wheels = sorted(options.dist.glob("*.whl"))
    sdists = sorted(options.dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        print(f"expected one wheel and one sdist in {options.dist}, found {wheels + sdists}")
        return 1
    [wheel], [sdist] = wheels, sdists
    problems = wheel_problems(wheel) + sdist_problems(sdist)
    versions = {distribution_version(wheel), distribution_version(sdist)}
    if options.expect_version is not None:
        versions.add(options.expect_version.removeprefix("v"))
    if len(versions) != 1:
        problems.append(f"the versions differ: {sorted(versions)}")
    if options.imports and not problems:
        with tempfile.TemporaryDirectory() as work:
            problems += import_problems(wheel, Path(work))

    for problem in problems:
        print(problem)
    if problems:
        return 1
    with zipfile.ZipFile(wheel) as archive:
        wheel_count = len(archive.namelist())
    with tarfile.open(sdist) as archive:
        top = sorted(
            {member.name.split("/")[1] for member in archive.getmembers() if member.isfile()}
        )
    print(
        f"{wheel.name}: {len(modules(wheel))} modules, py.typed, {wheel_count} files, "
        "nothing outside the package"
    )
    print(f"{sdist.name}: {', '.join(top)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
