"""Reading YAML platform files, with PyYAML from the ``platforms`` extra."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnistack_core.cli.platforms.processes import PlatformFileError
from omnistack_core.errors import MissingDependencyError


def yaml_documents(path: Path, root: Path) -> list[Any]:
    """Every non-empty document of the YAML file at ``path``.

    Args:
        path: The file.
        root: The service's root, which messages name paths from.

    Raises:
        PlatformFileError: It cannot be read or parsed.
        MissingDependencyError: PyYAML is not installed.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise PlatformFileError(f"{relative(path, root)}: {exc.strerror}") from None
    return yaml_text(text, relative(path, root))


def yaml_text(text: str, name: str) -> list[Any]:
    """Every non-empty document of ``text``, which comes from ``name`` (for messages).

    Raises:
        PlatformFileError: It is not YAML.
        MissingDependencyError: PyYAML is not installed.
    """
    try:
        import yaml  # noqa: PLC0415 - the platforms extra
    except ImportError:
        raise MissingDependencyError("cli.platforms", "platforms") from None
    try:
        # safe_load: the files are data; it also resolves compose's `<<: *anchor` merges.
        return [document for document in yaml.safe_load_all(text) if document is not None]
    except yaml.YAMLError as exc:
        raise PlatformFileError(f"{name}: not valid YAML: {exc}") from None


def relative(path: Path, root: Path) -> str:
    """``path`` from ``root``, as the messages name it."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()
