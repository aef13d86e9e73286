"""The Docker engine the container tests share, and the figures they print at the end."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from omnistack_core.testing.pytest_plugin import services_required
from tests.container.engine import Engine, EngineUnavailableError, find_or_start

# The nox session that installs no extras has neither Copier (the tests generate the service)
# nor the database driver: there is nothing here for it to run.
collect_ignore_glob = (
    []
    if all(importlib.util.find_spec(name) for name in ("copier", "yaml", "asyncpg", "jwt", "arq"))
    else ["test_*.py"]
)

# Image sizes, build and start-up times: printed after the run (never asserted).
FIGURES: list[str] = []


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Engine]:
    """An engine that answers: found, or started here and stopped when the session ends."""
    try:
        engine = find_or_start()
    except EngineUnavailableError as exc:
        if services_required():
            pytest.fail(f"a Docker engine is required: {exc} (OMNISTACK_REQUIRE_SERVICES=1)")
        pytest.skip(f"no Docker engine: {exc}")
    FIGURES.append(f"engine: {engine.host} ({'started' if engine.started else 'found'})")
    try:
        yield engine
    finally:
        engine.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("container figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
