"""pytest fixtures for real PostgreSQL and Redis.

Enable with ``pytest_plugins = ["omnistack_core.testing.pytest_plugin"]`` in ``conftest.py``.

``postgres_url`` is a fresh database for the test session on the server at
``OMNISTACK_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``),
dropped afterwards; ``empty_postgres_url`` one made for a single test (migration tests that
start from nothing). ``redis_url`` is ``OMNISTACK_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/15``), flushed before each test. Tests that use either are marked
``integration``. When a server does not answer, they skip with the reason, or fail when
``OMNISTACK_REQUIRE_SERVICES=1`` (as CI sets), so a missing server never passes unnoticed.

``local_issuer`` is a local token issuer serving its JWKS over HTTP (needs the ``auth``
extra); ``local_resend`` a local server speaking Resend's API; ``local_stripe`` one speaking
Stripe's billing API; ``local_openai`` one speaking OpenAI's Chat Completions API;
``local_anthropic`` one speaking Anthropic's Messages API.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, NoReturn

import pytest

from omnistack_core.testing.anthropic_server import LocalAnthropic
from omnistack_core.testing.openai_server import LocalOpenAI
from omnistack_core.testing.resend_server import LocalResend
from omnistack_core.testing.services import (
    DEFAULT_TEST_POSTGRES_URL,
    DEFAULT_TEST_REDIS_URL,
    ServiceUnavailableError,
    create_test_database,
    drop_test_database,
    flush_redis,
)
from omnistack_core.testing.stripe_server import LocalStripe

if TYPE_CHECKING:
    from omnistack_core.testing.issuer import LocalIssuer

_SERVICE_FIXTURES = {"postgres_url", "empty_postgres_url", "redis_url"}


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``integration`` marker."""
    config.addinivalue_line("markers", "integration: needs a real PostgreSQL or Redis server")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a real server as ``integration``."""
    for item in items:
        if _SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def services_required() -> bool:
    """Whether a missing server fails the tests instead of skipping them."""
    return os.environ.get("OMNISTACK_REQUIRE_SERVICES", "") == "1"


def _unavailable(reason: str) -> NoReturn:
    if services_required():
        pytest.fail(f"{reason} (OMNISTACK_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The ``postgresql+asyncpg://`` URL of an empty database made for this test session."""
    server = os.environ.get("OMNISTACK_TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL)
    try:
        url = create_test_database(server)
    except ServiceUnavailableError as exc:
        _unavailable(str(exc))
    yield url
    drop_test_database(server, url)


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """The ``postgresql+asyncpg://`` URL of an empty database made for this test alone."""
    server = os.environ.get("OMNISTACK_TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL)
    try:
        url = create_test_database(server)
    except ServiceUnavailableError as exc:
        _unavailable(str(exc))
    yield url
    drop_test_database(server, url)


@pytest.fixture(scope="session")
def _redis_server() -> str:
    url = os.environ.get("OMNISTACK_TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)
    try:
        flush_redis(url)
    except ServiceUnavailableError as exc:
        _unavailable(str(exc))
    return url


@pytest.fixture
def redis_url(_redis_server: str) -> str:
    """The URL of a Redis database emptied before this test."""
    flush_redis(_redis_server)
    return _redis_server


@pytest.fixture
def local_issuer() -> Iterator[LocalIssuer]:
    """A :class:`~omnistack_core.testing.issuer.LocalIssuer` serving its JWKS on 127.0.0.1.

    Needs the ``auth`` extra.
    """
    from omnistack_core.testing.issuer import LocalIssuer  # noqa: PLC0415 - auth extra

    with LocalIssuer() as issuer:
        yield issuer


@pytest.fixture
def local_resend() -> Iterator[LocalResend]:
    """A :class:`~omnistack_core.testing.LocalResend` speaking Resend's API on 127.0.0.1."""
    with LocalResend() as server:
        yield server


@pytest.fixture
def local_stripe() -> Iterator[LocalStripe]:
    """A :class:`~omnistack_core.testing.LocalStripe` speaking Stripe's API on 127.0.0.1."""
    with LocalStripe() as server:
        yield server


@pytest.fixture
def local_openai() -> Iterator[LocalOpenAI]:
    """A :class:`~omnistack_core.testing.LocalOpenAI` speaking OpenAI's API on 127.0.0.1."""
    with LocalOpenAI() as server:
        yield server


@pytest.fixture
def local_anthropic() -> Iterator[LocalAnthropic]:
    """A :class:`~omnistack_core.testing.LocalAnthropic` speaking Anthropic's API on 127.0.0.1."""
    with LocalAnthropic() as server:
        yield server
