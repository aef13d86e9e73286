"""What users may import is what ``__all__`` says, and each list is sorted and importable."""

from __future__ import annotations

import importlib
import importlib.util

import pytest

import omnistack_core
from omnistack_core import MissingDependencyError, OmniStackError

PUBLIC_MODULES = [
    "omnistack_core",
    pytest.param(
        "omnistack_core.ai",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("openai") is None, reason="needs the ai extra"
        ),
    ),
    pytest.param(
        "omnistack_core.auth",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("jwt") is None, reason="needs the auth extra"
        ),
    ),
    pytest.param(
        "omnistack_core.billing",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("stripe") is None, reason="needs the billing extra"
        ),
    ),
    pytest.param(
        "omnistack_core.console",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("jinja2") is None, reason="needs the console extra"
        ),
    ),
    "omnistack_core.db",
    pytest.param(
        "omnistack_core.email",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("resend") is None, reason="needs the email extra"
        ),
    ),
    "omnistack_core.health",
    pytest.param(
        "omnistack_core.jobs",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("arq") is None, reason="needs the jobs extra"
        ),
    ),
    "omnistack_core.observability",
    "omnistack_core.rate_limit",
    "omnistack_core.testing",
    "omnistack_core.testing.stripe_server",
    "omnistack_core.validation",
]


def isort_order(name: str) -> tuple[int, str]:
    # The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions and the rest.
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_sorted_and_every_name_exists(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__

    assert exported == sorted(exported, key=isort_order)
    assert len(exported) == len(set(exported))
    for attribute in exported:
        assert hasattr(module, attribute), f"{name}.{attribute}"


def test_the_metrics_module_exports_what_it_lists() -> None:
    metrics = pytest.importorskip(
        "omnistack_core.observability.metrics", reason="observability extra"
    )

    assert metrics.__all__ == sorted(metrics.__all__, key=isort_order)
    assert all(hasattr(metrics, name) for name in metrics.__all__)


def test_the_package_exports_exactly_the_documented_names() -> None:
    assert omnistack_core.__all__ == [
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


def test_missing_dependency_error_is_an_import_error_naming_the_extra() -> None:
    error = MissingDependencyError("billing", "billing")

    assert isinstance(error, ImportError)
    assert isinstance(error, OmniStackError)
    assert "pip install 'omnistack-core[billing]'" in str(error)
