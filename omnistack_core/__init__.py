"""OmniStack core: the building blocks of a production FastAPI service.

The public surface is what ``__all__`` lists; modules such as ``omnistack_core.db`` and the
optional ``auth``, ``billing``, ``ai``, ``email`` and ``jobs`` are imported on their own.
"""

from omnistack_core.app import API_PREFIX, create_app
from omnistack_core.errors import (
    ConfigProblem,
    ConfigurationError,
    MissingDependencyError,
    ModuleNotRunningError,
    OmniStackError,
    ProblemError,
)
from omnistack_core.installation import Installation, install, resource_of, settings_class_for
from omnistack_core.module import Module
from omnistack_core.module_settings import ModuleSettings, Requirement, When, required
from omnistack_core.settings import Settings, load_settings

try:
    from omnistack_core._version import __version__
except ImportError:  # running from a source tree that was never built or installed
    __version__ = "0.0.0"

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
