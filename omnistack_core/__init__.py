"""OmniStack core: the building blocks of a production FastAPI service.

The public surface is what ``__all__`` lists; modules such as ``omnistack_core.db`` and the
optional ``auth``, ``billing``, ``ai``, ``email`` and ``jobs`` are imported on their own.

The names are imported when first used, not with the package: the ``omnistack`` command and
``omnistack serve``'s supervisor import the package without needing FastAPI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omnistack_core.app import API_PREFIX, create_app
    from omnistack_core.errors import (
        ConfigProblem,
        ConfigurationError,
        MissingDependencyError,
        ModuleNotRunningError,
        OmniStackError,
        ProblemError,
    )
    from omnistack_core.installation import (
        Installation,
        install,
        resource_of,
        settings_class_for,
    )
    from omnistack_core.module import Module
    from omnistack_core.module_settings import ModuleSettings, Requirement, When, required
    from omnistack_core.settings import Settings, load_settings

try:
    from omnistack_core._version import __version__
except ImportError:  # running from a source tree that was never built or installed
    __version__ = "0.0.0"

_HOMES = {
    "API_PREFIX": "app",
    "create_app": "app",
    "ConfigProblem": "errors",
    "ConfigurationError": "errors",
    "MissingDependencyError": "errors",
    "ModuleNotRunningError": "errors",
    "OmniStackError": "errors",
    "ProblemError": "errors",
    "Installation": "installation",
    "install": "installation",
    "resource_of": "installation",
    "settings_class_for": "installation",
    "Module": "module",
    "ModuleSettings": "module_settings",
    "Requirement": "module_settings",
    "When": "module_settings",
    "required": "module_settings",
    "Settings": "settings",
    "load_settings": "settings",
}
"""Each public name, and the module of this package that defines it."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # found directly from now on
    return value


__all__ = [
    "API_PREFIX",
    "ConfigProblem",
    "ConfigurationError",
    "Installation",
    "MissingDependencyError",
    "Module",
    "ModuleNotRunningError",
    "ModuleSettings",
    "OmniStackError",
    "ProblemError",
    "Requirement",
    "Settings",
    "When",
    "__version__",
    "create_app",
    "install",
    "load_settings",
    "required",
    "resource_of",
    "settings_class_for",
]
