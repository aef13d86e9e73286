from __future__ import annotations

import shutil

import pytest

from omnistack_core.testing.pytest_plugin import services_required


@pytest.fixture(scope="session")
def promtool() -> str:
    """Prometheus' rule checker: skips without it, fails with OMNISTACK_REQUIRE_SERVICES=1."""
    path = shutil.which("promtool")
    if path is None:
        reason = "promtool is not installed (Debian: apt-get install prometheus)"
        if services_required():
            pytest.fail(f"{reason} (OMNISTACK_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(reason)
    return path
