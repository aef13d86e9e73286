"""Docker Compose files: the services that run the service's image, and their environment.

A compose service is one of the service's processes when it is built here (``build:``), runs
a command of the service (uvicorn, arq, the migration), or runs the image such a service runs;
the databases beside them are not. Its kind comes from its command; without one it runs the
image's, the API. A variable counts as declared when ``environment:`` (or an ``env_file:``
that exists) gives it a non-empty value, passes it through from the shell (a bare name, or
``${NAME}``), requires it from there (``${NAME:?message}``: compose refuses to start without
it), or defaults it to a non-empty value (``${NAME:-value}``). ``${NAME:-}`` defaults to
empty, which production refuses where it requires the variable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from omnistack_core.cli.platforms.processes import (
    PlatformFile,
    PlatformFileError,
    Process,
    ProcessKind,
    Setting,
    command_kind,
    declared,
    gap,
    literal,
    text_of,
)
from omnistack_core.cli.platforms.yaml_files import relative, yaml_documents

# The names compose looks for, in its order.
FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?+])(?P<argument>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def read(root: Path) -> list[PlatformFile]:
    """The processes each compose file of the service starts.

    Raises:
        PlatformFileError: A file is not a compose file the check can read.
    """
    found = []
    for name in FILES:
        path = root / name
        if path.is_file():
            found.append(_read_file(path, root))
    return found


def _read_file(path: Path, root: Path) -> PlatformFile:
    documents = yaml_documents(path, root)
    name = relative(path, root)
    compose = documents[0] if documents else {}
    services = compose.get("services") if isinstance(compose, dict) else None
    if not isinstance(services, dict):
        raise PlatformFileError(f"{name}: no services: mapping")
    # The images the service's own processes run: the databases beside them run others.
    images = {
        service.get("image")
        for service in services.values()
        if "build" in service or _kind(service) is not None
    }
    processes = [
        Process(
            f"service {service_name}",
            _kind(service) or "api",
            _settings(service, path.parent, root),
        )
        for service_name, service in services.items()
        if "build" in service or service.get("image") in images - {None}
    ]
    return PlatformFile("compose", name, tuple(processes))


def _kind(service: dict[str, Any]) -> ProcessKind | None:
    command = [*_words(service.get("entrypoint")), *_words(service.get("command"))]
    return command_kind(command) if command else None


def _words(command: Any) -> list[str]:
    if command is None:
        return []
    return [str(command)] if isinstance(command, str) else [str(part) for part in command]


def _settings(service: dict[str, Any], directory: Path, root: Path) -> dict[str, Setting]:
    settings: dict[str, Setting] = {}
    env_files = service.get("env_file") or []
    for entry in [env_files] if isinstance(env_files, str | dict) else env_files:
        file = entry.get("path") if isinstance(entry, dict) else entry
        path = directory / str(file)
        if path.is_file():
            source = f"env_file {relative(path, root)}"
            for name, value in dotenv_values(path).items():
                settings[name] = literal(value or "", source)
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        pairs = [str(item).partition("=") for item in environment]
        environment = {name: value if equals else None for name, equals, value in pairs}
    for name, value in environment.items():
        if value is None:
            settings[str(name)] = declared("passed through from the shell compose runs in")
        else:
            settings[str(name)] = interpolated(text_of(value))
    return settings


def interpolated(value: str) -> Setting:
    """How a value of ``environment:`` gives its variable, once compose interpolates it."""
    whole = _INTERPOLATION.fullmatch(value)
    if whole is not None and not whole["escaped"]:
        return _from_the_shell(whole)
    parts: list[str] = []
    known = True
    position = 0
    for found in _INTERPOLATION.finditer(value):
        parts.append(value[position : found.start()])
        position = found.end()
        if found["escaped"]:
            parts.append("$")
        elif found["operator"] in (":-", "-"):
            parts.append(found["argument"])
        else:
            known = False
    parts.append(value[position:])
    text = "".join(parts)
    if position == 0:
        return literal(text)
    if not known:
        # Text around a variable from the shell: set, to a value only the shell knows.
        return declared("a value with variables from the shell")
    return literal(text, "a value with defaults for the shell's variables")


def _from_the_shell(found: re.Match[str]) -> Setting:
    name = found["braced"] or found["bare"]
    operator = found["operator"]
    argument = found["argument"] or ""
    if operator in (":?", "?"):
        return declared(f"${{{name}{operator}...}} (compose refuses to start without it)")
    if operator in (":-", "-"):
        if not argument:
            written = f"${{{name}{operator}}}"
            return gap(written, f"defaulted to empty by {written} (${{{name}:?...}} requires it)")
        # The default's value stays out of the source: the source is printed.
        return declared(f"${{{name}{operator}...}} (the shell's, else a default)", [argument])
    if operator in (":+", "+"):
        return declared(f"${{{name}{operator}...}} (a value when the shell sets {name})")
    return declared(f"${{{name}}} (from the shell compose runs in)")
