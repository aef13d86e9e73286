"""Rate limits: sliding windows in process and in Redis, 429s, keys by address, refusals counted."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI

from omnistack_core import ModuleNotRunningError, Settings, create_app, load_settings
from omnistack_core.rate_limit import RateLimit, RateText, parse_rate
from omnistack_core.testing import wait_until

WELCOME = "/welcome"
OPEN = "/open"


class DemoSettings(Settings):
    """A service whose limit is a setting."""

    demo_rate_limit: RateText = "2/minute"


def limited_app(rate: str = "3/minute", **settings: object) -> FastAPI:
    """An app with one limited route, one limited by a setting and one public on purpose."""
    app = create_app(load_settings(DemoSettings, **settings))

    @app.post(WELCOME, dependencies=[Depends(RateLimit(rate, name="welcome"))])
    async def welcome() -> dict[str, bool]:
        return {"sent": True}

    @app.get("/configured")
    async def configured(
        _: Annotated[None, Depends(RateLimit(setting="demo_rate_limit", name="demo"))],
    ) -> dict[str, bool]:
        return {"ok": True}

    # Public on purpose: no RateLimit among its dependencies.
    @app.get(OPEN)
    async def public() -> dict[str, bool]:
        return {"ok": True}

    return app


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    async with app.router.lifespan_context(app):
        yield app


def client_at(app: FastAPI, address: str) -> httpx.AsyncClient:
    """A client whose requests come from ``address``, as the server would see it."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def post_times(client: httpx.AsyncClient, times: int) -> list[int]:
    return [(await client.post(WELCOME)).status_code for _ in range(times)]


def test_rates_are_written_as_count_per_period() -> None:
    assert parse_rate("10/minute").seconds == 60
    assert parse_rate("5/10second").count == 5
    assert parse_rate("5/10second").seconds == 10
    assert parse_rate("100/hours").seconds == 3600
    assert str(parse_rate("5/120second")) == "5/2minute"


@pytest.mark.parametrize(
    "text", ["10", "0/minute", "10/week", "ten/minute", "3/0hour", "1000001/second"]
)
def test_a_rate_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a rate|at least 1|at most"):
        parse_rate(text)


def test_a_limit_needs_a_rate_or_a_setting() -> None:
    with pytest.raises(ValueError, match="not both"):
        RateLimit()
    with pytest.raises(ValueError, match="not both"):
        RateLimit("1/minute", setting="demo_rate_limit")


async def test_the_request_over_the_limit_gets_a_problem_429() -> None:
    app = limited_app("3/minute")
    async with running(app), client_at(app, "203.0.113.7") as client:
        statuses = await post_times(client, 3)
        refused = await client.post(WELCOME)

    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert "at most 3 in a minute" in refused.json()["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60


async def test_retry_after_counts_until_the_oldest_request_leaves_the_window() -> None:
    app = limited_app("1/hour")
    async with running(app), client_at(app, "203.0.113.7") as client:
        await client.post(WELCOME)
        refused = await client.post(WELCOME)

    # An hour less the moments since the first request: well over the minute of a fixed
    # minute-long window, never over the hour.
    assert 3000 < int(refused.headers["retry-after"]) <= 3600


async def test_each_client_address_has_its_own_window() -> None:
    app = limited_app("2/minute")
    async with running(app):
        async with client_at(app, "203.0.113.7") as first:
            first_statuses = await post_times(first, 3)
        async with client_at(app, "198.51.100.9") as second:
            second_statuses = await post_times(second, 3)

    assert first_statuses == [200, 200, 429]
    assert second_statuses == [200, 200, 429]


async def test_a_forwarded_for_header_does_not_change_the_key() -> None:
    # The server rewrites the client address from X-Forwarded-For only for trusted proxies;
    # the limiter itself never reads the header, so writing one buys no new window.
    app = limited_app("2/minute")
    async with running(app), client_at(app, "203.0.113.7") as client:
        statuses = [
            (await client.post(WELCOME, headers={"X-Forwarded-For": f"10.0.0.{n}"})).status_code
            for n in range(3)
        ]

    assert statuses == [200, 200, 429]


async def test_a_route_without_a_limit_stays_public() -> None:
    app = limited_app("1/minute")
    async with running(app), client_at(app, "203.0.113.7") as client:
        await post_times(client, 2)
        statuses = {(await client.get(OPEN)).status_code for _ in range(30)}

    assert statuses == {200}


async def test_a_limit_can_be_read_from_a_setting() -> None:
    app = limited_app(demo_rate_limit="1/minute")
    async with running(app), client_at(app, "203.0.113.7") as client:
        statuses = [(await client.get("/configured")).status_code for _ in range(2)]

    assert statuses == [200, 429]


async def test_a_limit_read_from_a_missing_setting_says_which_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(load_settings())

    @app.get("/chat", dependencies=[Depends(RateLimit(setting="ai_rate_limit"))])
    async def chat() -> dict[str, bool]:
        return {"ok": True}

    async with running(app), client_at(app, "203.0.113.7") as client:
        response = await client.get("/chat")

    assert response.status_code == 500
    [error] = [r for r in caplog.records if r.exc_info]
    assert isinstance(error.exc_info[1], ModuleNotRunningError)
    assert "RateLimit(setting='ai_rate_limit')" in str(error.exc_info[1])


def test_a_setting_that_is_not_a_rate_fails_at_start_up() -> None:
    with pytest.raises(Exception, match="DEMO_RATE_LIMIT"):
        load_settings(DemoSettings, demo_rate_limit="lots")


async def test_limits_can_be_turned_off() -> None:
    app = limited_app("1/minute", rate_limit_enabled=False)
    async with running(app), client_at(app, "203.0.113.7") as client:
        statuses = await post_times(client, 5)

    assert statuses == [200] * 5


async def test_a_custom_key_counts_what_it_returns() -> None:
    async def by_tenant(request: object) -> str:
        return "tenant:acme"

    app = create_app(load_settings())

    @app.get("/report", dependencies=[Depends(RateLimit("2/minute", key=by_tenant))])
    async def report() -> dict[str, bool]:
        return {"ok": True}

    async with running(app):
        statuses = []
        for address in ("203.0.113.7", "198.51.100.9", "192.0.2.1"):
            async with client_at(app, address) as client:
                statuses.append((await client.get("/report")).status_code)

    assert statuses == [200, 200, 429]


async def test_refusals_are_counted_by_limit() -> None:
    metrics_module = pytest.importorskip("omnistack_core.observability.metrics")
    registry = metrics_module.REGISTRY

    def refusals() -> float:
        value = registry.get_sample_value("rate_limit_refusals_total", {"limit": "welcome"})
        return value or 0.0

    before = refusals()
    app = limited_app("1/minute")
    async with running(app), client_at(app, "203.0.113.7") as client:
        await post_times(client, 3)
        metrics = await client.get("/api/v1/public/metrics")

    assert refusals() - before == 2
    assert 'rate_limit_refusals_total{limit="welcome"}' in metrics.text


async def test_instances_on_one_redis_share_the_window(redis_url: str) -> None:
    first, second = (
        limited_app("3/minute", redis_url=redis_url),
        limited_app("3/minute", redis_url=redis_url),
    )
    async with running(first), running(second):
        async with client_at(first, "203.0.113.7") as one, client_at(second, "203.0.113.7") as two:
            statuses = [
                *(await post_times(one, 2)),
                *(await post_times(two, 1)),
                *(await post_times(one, 1)),
                *(await post_times(two, 1)),
            ]
            refused = await two.post(WELCOME)
        keys = [key async for key in first.state.redis.scan_iter("omnistack:rate_limit:*")]
        ttl = await first.state.redis.pttl(keys[0])

    assert statuses == [200, 200, 200, 429, 429]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Each key expires with its window, so Redis keeps nothing for callers gone quiet.
    assert [key.decode() for key in keys] == ["omnistack:rate_limit:welcome:address:203.0.113.7"]
    assert 0 < ttl <= 60_000


async def test_without_redis_answering_limits_hold_per_instance_and_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = limited_app("2/minute", redis_url="redis://127.0.0.1:1/0", health_check_timeout=0.5)
    with caplog.at_level(logging.WARNING, logger="omnistack.rate_limit"):
        async with running(app), client_at(app, "203.0.113.7") as client:
            statuses = await post_times(client, 3)

    assert statuses == [200, 200, 429]
    warnings = [r.getMessage() for r in caplog.records if r.name == "omnistack.rate_limit"]
    assert len(warnings) == 1  # once a minute, not once a request
    assert "Redis does not answer" in warnings[0]


# The "done when" of issue 18: two API processes on one Redis, a window of 10.
APP_MODULE = """
from fastapi import Depends
from omnistack_core import create_app
from omnistack_core.rate_limit import RateLimit

app = create_app()


@app.post("/welcome", dependencies=[Depends(RateLimit("10/minute", name="welcome"))])
async def welcome() -> dict[str, bool]:
    return {"sent": True}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def two_api_processes(redis_url: str, tmp_path: Path) -> Iterator[list[str]]:
    """Two uvicorn processes serving one limited app, sharing ``redis_url``; their base URLs."""
    (tmp_path / "limited_service.py").write_text(textwrap.dedent(APP_MODULE))
    env = {
        **os.environ,
        "ENVIRONMENT": "development",
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/dev.db",
        "PYTHONPATH": str(tmp_path),
    }
    ports = [free_port(), free_port()]
    processes = []
    for port in ports:
        with (tmp_path / f"api-{port}.log").open("wb") as log:
            command = [sys.executable, "-m", "uvicorn", "limited_service:app", "--port", str(port)]
            processes.append(
                subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=log)
            )
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for port, process in zip(ports, processes, strict=True):
            _wait_until_serving(port, process, tmp_path / f"api-{port}.log")
        yield urls
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def _wait_until_serving(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            pytest.fail(f"the API process exited: {log.read_text()[-2000:]}")
        try:
            httpx.get(f"{url}/api/v1/public/health", timeout=1)
        except httpx.TransportError:
            return False
        return True

    wait_until(answers, timeout=30, message=f"the API at {url} did not start")


def test_the_eleventh_request_in_a_window_of_ten_is_refused_across_two_processes(
    two_api_processes: list[str],
) -> None:
    first, second = two_api_processes
    with httpx.Client(timeout=10) as client:
        accepted = [client.post(f"{url}/welcome").status_code for url in [first, second] * 5]
        eleventh = client.post(f"{first}/welcome")
        twelfth = client.post(f"{second}/welcome")

    assert accepted == [200] * 10
    assert (eleventh.status_code, twelfth.status_code) == (429, 429)
    assert eleventh.headers["content-type"] == "application/problem+json"
    assert 1 <= int(eleventh.headers["retry-after"]) <= 60
