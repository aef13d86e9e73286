"""Judging a platform file's processes against the variables production requires of them.

Each process is judged in the ``ENVIRONMENT`` its file gives it (``production`` when the file
leaves it to the image or the platform), with the values the file writes for the other
variables: ``EMAIL_PROVIDER=resend`` written in the file makes ``RESEND_API_KEY`` required;
a value the platform fills in (a secret) makes no condition hold. Where the file writes
several values (one per environment), every combination is judged.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from omnistack_core.cli.platforms.processes import PlatformFile, Process, ProcessKind, Setting
from omnistack_core.module_settings import ENVIRONMENTS, normalized_environment
from omnistack_core.variables import Variable

DEFAULT_ENVIRONMENT = "production"
NOT_GIVEN = "neither set nor declared"


@dataclass(frozen=True, slots=True)
class Finding:
    """A variable a process needs that its platform file does not give it.

    Attributes:
        platform: The platform (``render``).
        path: The file or overlay, from the service's root.
        process: The process as the file names it.
        kind: ``api``, ``worker`` or ``migration``.
        variable: The variable's name.
        gap: How the file leaves it out (``neither set nor declared``, ``set to an empty
            value``...).
        reason: Why the process needs it (``required when ENVIRONMENT=production``).
    """

    platform: str
    path: str
    process: str
    kind: ProcessKind
    variable: str
    gap: str
    reason: str

    def line(self) -> str:
        """The finding in one line: file, process, variable, and why."""
        where = f"{self.path}: {self.process} ({self.kind})"
        return f"{where}: {self.variable} is {self.gap}; {self.reason}"

    def to_json(self) -> dict[str, Any]:
        """The finding as JSON data."""
        return asdict(self)


def findings_of(
    platform_file: PlatformFile, variables: Mapping[ProcessKind, Sequence[Variable]]
) -> list[Finding]:
    """What each process of ``platform_file`` needs and does not get.

    Args:
        platform_file: The file's processes.
        variables: The variables each kind of process reads.
    """
    found: list[Finding] = []
    for process in platform_file.processes:
        for variable, why, reason in _missing(process, variables[process.kind]):
            found.append(
                Finding(
                    platform_file.platform,
                    platform_file.path,
                    process.name,
                    process.kind,
                    variable,
                    why,
                    reason,
                )
            )
    return found


def environments_of(process: Process) -> list[str]:
    """The environments ``process`` runs in, as its file gives ``ENVIRONMENT``."""
    setting = process.settings.get("ENVIRONMENT")
    if setting is None or not setting.values:
        return [DEFAULT_ENVIRONMENT]
    return [normalized_environment(value) for value in setting.values]


def _missing(process: Process, variables: Sequence[Variable]) -> list[tuple[str, str, str]]:
    """``(variable, how it is left out, why it is needed)`` for each one missing."""
    missing: dict[str, tuple[str, str, str]] = {}
    for environment in environments_of(process):
        if environment not in ENVIRONMENTS:
            why = f"{environment!r}, not one of {', '.join(ENVIRONMENTS)}"
            missing.setdefault("ENVIRONMENT", ("ENVIRONMENT", why, "the settings refuse it"))
    for values in _combinations(process.settings):
        environment = normalized_environment(values.get("ENVIRONMENT", DEFAULT_ENVIRONMENT))
        for variable in variables:
            setting = process.settings.get(variable.name)
            if variable.name in missing or (setting is not None and setting.given):
                continue
            reason = variable.required_because(environment, values)
            if reason is not None:
                how = NOT_GIVEN if setting is None or setting.gap is None else setting.gap
                missing[variable.name] = (variable.name, how, reason)
    return list(missing.values())


def _combinations(settings: Mapping[str, Setting]) -> list[dict[str, str]]:
    """Every assignment of the values the file writes, one value per variable."""
    written = {name: setting.values for name, setting in settings.items() if setting.values}
    names = list(written)
    return [
        dict(zip(names, chosen, strict=True)) for chosen in itertools.product(*written.values())
    ]
