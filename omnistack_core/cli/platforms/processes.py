"""What a platform file says: the processes it starts and how it gives each its variables."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

ProcessKind = Literal["api", "worker", "migration"]

# The commands of a service's processes, however a platform wraps them (sh -c, exec form).
_MIGRATION = re.compile(r"migrate_production\.py|omnistack\s+db\s+upgrade|alembic\s+upgrade")
_WORKER = re.compile(r"(^|[\s/\"'])arq\s|WorkerSettings")
_API = re.compile(
    r"(^|[\s/\"'])(uvicorn\s|gunicorn\s|hypercorn\s|fastapi\s+run\s|omnistack\s+serve\b)"
)


class PlatformFileError(Exception):
    """A platform file cannot be read, or uses something the check cannot resolve."""


@dataclass(frozen=True, slots=True)
class Setting:
    """How a platform file gives a process one variable.

    Attributes:
        source: Where the value comes from, in the platform's words (``value``,
            ``sync: false``, ``secretKeyRef app-secrets/SECRET_KEY``).
        values: The values the file writes for it (several when it picks one per
            environment); empty when the platform fills it in.
        gap: Why it does not count as given (``set to an empty value``), or None.
    """

    source: str
    values: tuple[str, ...] = ()
    gap: str | None = None

    @property
    def given(self) -> bool:
        """Whether the file sets the variable or declares where its value comes from."""
        return self.gap is None


def text_of(value: object) -> str:
    """A value a YAML or TOML file wrote, as the process's environment gets it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def literal(value: str, source: str = "value") -> Setting:
    """A value written in the file; an empty one does not count as set."""
    return Setting(source, (value,), "set to an empty value" if value == "" else None)


def declared(source: str, values: Sequence[str] = ()) -> Setting:
    """A value the platform fills in from ``source`` (a secret, a reference...)."""
    return Setting(source, tuple(values))


def gap(source: str, why: str) -> Setting:
    """A variable the file names without giving it a value: ``why`` says how."""
    return Setting(source, (), why)


def either(settings: Iterable[Setting]) -> Setting:
    """One of ``settings``, depending on something the file decides (an environment's name).

    Given only when every one of them is; its values are all of theirs.
    """
    choices = list(settings)
    sources = list(dict.fromkeys(setting.source for setting in choices))
    values = tuple(dict.fromkeys(value for setting in choices for value in setting.values))
    gaps = [setting.gap for setting in choices if setting.gap is not None]
    return Setting(" or ".join(sources), values, gaps[0] if gaps else None)


@dataclass(frozen=True, slots=True)
class Process:
    """One process a platform file starts.

    Attributes:
        name: The process as the file names it (``service api``, ``Deployment api``).
        kind: What it runs: the API, the jobs worker or the migration.
        settings: How the file gives it each variable, by variable name.
    """

    name: str
    kind: ProcessKind
    settings: Mapping[str, Setting] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PlatformFile:
    """The processes one platform file (or Kubernetes overlay) starts.

    Attributes:
        platform: ``render``, ``fly``, ``railway``, ``compose`` or ``kubernetes``.
        path: The file, or the overlay's directory, relative to the service's root.
        processes: What it starts.
    """

    platform: str
    path: str
    processes: tuple[Process, ...]


def command_kind(command: str | Sequence[str] | None) -> ProcessKind | None:
    """The kind of process ``command`` starts, or None when it is none of the service's.

    Args:
        command: A shell command line, or a command in exec form.
    """
    if command is None:
        return None
    text = command if isinstance(command, str) else " ".join(str(part) for part in command)
    text = f" {text} "
    if _MIGRATION.search(text):
        return "migration"
    if _WORKER.search(text):
        return "worker"
    if _API.search(text):
        return "api"
    return None
