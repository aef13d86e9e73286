"""Fly.io's ``fly.toml``: its process groups, its release command, ``[env]`` and secrets.

Without ``[processes]`` the app runs the image's command, the API; with it, each group runs
its command. ``[deploy] release_command`` is the migration. ``[env]`` and secrets reach every
process of the app. A variable counts as declared when ``[env]`` gives it a non-empty value,
or when a comment of the file documents it in a ``fly secrets set NAME=...`` command: secrets
live on Fly, encrypted, and the file is where the steps that set them are written down.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

from omnistack_core.cli.platforms.processes import (
    PlatformFile,
    PlatformFileError,
    Process,
    Setting,
    command_kind,
    declared,
    literal,
    text_of,
)

FILE = "fly.toml"
_SECRETS_SET = re.compile(r"^\s*#.*?\bfly(?:ctl)?\s+secrets\s+set\s+(?P<arguments>.*)$")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def read(root: Path) -> list[PlatformFile]:
    """The processes ``fly.toml`` starts; none when the service has no such file.

    Raises:
        PlatformFileError: The file is not TOML.
    """
    path = root / FILE
    if not path.is_file():
        return []
    text = path.read_text()
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlatformFileError(f"{FILE}: not valid TOML: {exc}") from None
    settings: dict[str, Setting] = {
        str(name): literal(text_of(value), "[env]")
        for name, value in (config.get("env") or {}).items()
    }
    for name in documented_secrets(text):
        # A secret wins over [env] on Fly.
        settings[name] = declared("fly secrets set (documented in a comment)")
    processes = [
        Process(f"process {name}", command_kind(command) or "api", settings)
        for name, command in (config.get("processes") or {}).items()
    ] or [Process("app", "api", settings)]
    release = (config.get("deploy") or {}).get("release_command")
    if release:
        processes.append(Process("release_command", command_kind(release) or "migration", settings))
    return [PlatformFile("fly", FILE, tuple(processes))]


def documented_secrets(text: str) -> list[str]:
    """The variables that comments of ``text`` set with ``fly secrets set NAME=...``."""
    names: list[str] = []
    for line in text.splitlines():
        found = _SECRETS_SET.match(line)
        if found is None:
            continue
        arguments = found["arguments"]
        try:
            words = shlex.split(arguments, comments=True)
        except ValueError:  # an unbalanced quote in a comment: its words as they stand
            words = arguments.split()
        for word in words:
            name, equals, _ = word.partition("=")
            if equals and _NAME.fullmatch(name) and name not in names:
                names.append(name)
    return names
