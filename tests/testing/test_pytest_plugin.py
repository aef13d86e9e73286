"""The service fixtures skip on a laptop without servers and fail where CI requires them."""

from __future__ import annotations

import pytest
import redis.asyncio as redis

USES_POSTGRES = """
def test_needs_postgres(postgres_url):
    assert postgres_url.startswith("postgresql+asyncpg://")
"""

USES_REDIS = """
def test_needs_redis(redis_url):
    assert redis_url
"""


UNREACHABLE_SERVERS = pytest.mark.parametrize(
    ("source", "variable", "url"),
    [
        (
            USES_POSTGRES,
            "OMNISTACK_TEST_POSTGRES_URL",
            "postgresql://postgres@127.0.0.1:1/postgres",
        ),
        (USES_REDIS, "OMNISTACK_TEST_REDIS_URL", "redis://127.0.0.1:1/15"),
    ],
    ids=["postgres", "redis"],
)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest('pytest_plugins = ["omnistack_core.testing.pytest_plugin"]')
    return pytester


@UNREACHABLE_SERVERS
def test_an_unreachable_server_skips_with_the_reason(
    project: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    variable: str,
    url: str,
) -> None:
    monkeypatch.setenv(variable, url)
    monkeypatch.delenv("OMNISTACK_REQUIRE_SERVICES", raising=False)
    project.makepyfile(source)

    result = project.runpytest_subprocess("-rs")

    result.assert_outcomes(skipped=1)
    # Without the client library installed (a run with no extras) that is the reason given.
    result.stdout.re_match_lines([r".*(127\.0\.0\.1:1.* does not answer|is not installed).*"])


@UNREACHABLE_SERVERS
def test_an_unreachable_server_fails_when_services_are_required(
    project: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    variable: str,
    url: str,
) -> None:
    monkeypatch.setenv(variable, url)
    monkeypatch.setenv("OMNISTACK_REQUIRE_SERVICES", "1")
    project.makepyfile(source)

    result = project.runpytest_subprocess()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*OMNISTACK_REQUIRE_SERVICES=1*"])


def test_tests_using_servers_are_marked_integration(project: pytest.Pytester) -> None:
    project.makepyfile(USES_POSTGRES + "\n\ndef test_pure():\n    assert 1 + 1 == 2\n")

    result = project.runpytest_subprocess("-m", "not integration")

    result.assert_outcomes(passed=1, deselected=1)


def test_postgres_url_is_a_fresh_empty_database(postgres_url: str) -> None:
    name = postgres_url.rsplit("/", 1)[1]
    assert name.startswith("omnistack_test_")


async def test_redis_url_starts_empty(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert await client.dbsize() == 0
        await client.set("left-behind", "1")
    finally:
        await client.aclose()
