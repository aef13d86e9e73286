"""``omnistack check-platform``: the platform files give each process what production requires.

It reads the files a service deploys from (``render.yaml``, ``fly.toml``,
``.railway/railway.py``, the compose files, the overlays under ``deploy/k8s/overlays/``) with
the readers of :mod:`omnistack_core.cli.platforms`, and reports every variable a process
needs that its file neither sets nor declares as provided elsewhere. The API and the jobs
worker (which loads the same app) need the variables of the core and of every module the app
installs; the migration needs the core's, which is what ``omnistack db upgrade`` loads.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from omnistack_core.cli.config import modules_of
from omnistack_core.cli.platforms import compose, fly, kubernetes, railway, render
from omnistack_core.cli.platforms.findings import Finding, environments_of, findings_of
from omnistack_core.cli.platforms.processes import PlatformFile, PlatformFileError, ProcessKind
from omnistack_core.cli.service_app import AppNotFoundError, add_app_option, configured_app
from omnistack_core.errors import MissingDependencyError
from omnistack_core.variables import Variable, variables_of

READERS: tuple[Callable[[Path], list[PlatformFile]], ...] = (
    render.read,
    fly.read,
    railway.read,
    compose.read,
    kubernetes.read,
)
"""One per platform, each reading the files of its platform the service has."""

WHERE = (
    "render.yaml, fly.toml, .railway/railway.py, compose.yaml or docker-compose.yml, "
    "deploy/k8s/overlays/*"
)


def add_commands(commands: Any) -> None:
    """Add ``check-platform``."""
    check = commands.add_parser(
        "check-platform",
        help="check that each platform file gives every process the variables production needs",
        description="Read the service's platform files (" + WHERE + ") without running "
        "them, and report each variable that a process (API, worker, migration) needs in "
        "production for the app's modules and that the file neither sets nor declares as "
        "provided (a secret to fill in, a reference). Exit 1 on findings.",
    )
    add_app_option(check)
    check.add_argument("--format", choices=["text", "json"], default="text")
    check.set_defaults(handler=_check_platform)


def _check_platform(arguments: argparse.Namespace) -> int:
    spec = configured_app(arguments)
    try:
        modules = modules_of(spec)
        files = [found for read in READERS for found in read(Path.cwd())]
    except (AppNotFoundError, MissingDependencyError, PlatformFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app_variables = variables_of(modules)
    variables: dict[ProcessKind, Sequence[Variable]] = {
        "api": app_variables,
        "worker": app_variables,
        # scripts/migrate_production.py runs `omnistack db upgrade`: the core's settings.
        "migration": variables_of([]),
    }
    findings = [finding for file in files for finding in findings_of(file, variables)]
    module_names = [module.name for module in modules]
    if arguments.format == "json":
        print(json.dumps(_report(files, findings, spec, module_names), indent=2))
    else:
        _print_text(files, findings, spec, module_names)
    return 1 if findings else 0


def _report(
    files: list[PlatformFile], findings: list[Finding], spec: str | None, modules: list[str]
) -> dict[str, Any]:
    return {
        "app": spec,
        "modules": modules,
        "files": [
            {
                "platform": file.platform,
                "path": file.path,
                "processes": [
                    {
                        "name": process.name,
                        "kind": process.kind,
                        "environments": environments_of(process),
                    }
                    for process in file.processes
                ],
            }
            for file in files
        ],
        "findings": [finding.to_json() for finding in findings],
    }


def _print_text(
    files: list[PlatformFile], findings: list[Finding], spec: str | None, modules: list[str]
) -> None:
    if not files:
        print(f"no platform files found ({WHERE}): nothing to check")
        return
    if findings:
        for finding in findings:
            print(finding.line())
        print(
            f"{len(findings)} variables missing from the platform files; each must be set "
            "there or declared as provided (a secret to fill in, a reference)",
            file=sys.stderr,
        )
        return
    if spec is None:
        against = "the core's variables: no app found (--app, or [tool.omnistack] app)"
    else:
        against = f"{spec}: {', '.join(['core', *modules])}"
    print(f"every process gets what production requires ({against})")
    for file in files:
        processes = ", ".join(f"{process.name} ({process.kind})" for process in file.processes)
        print(f"{file.platform}: {file.path}: ok: {processes or 'no process'}")
