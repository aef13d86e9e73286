"""Readiness against real dependencies: Redis, caching of results, draining at shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import httpx
import pytest
from starlette.applications import Starlette

from omnistack_core import create_app, load_settings
from omnistack_core.health import HealthCheck, register_check
from omnistack_core.testing import app_client, wait_until

READY = "/api/v1/public/health/ready"
LIVE = "/api/v1/public/health"


async def test_redis_is_checked_when_configured(redis_url: str) -> None:
    app = create_app(load_settings(redis_url=redis_url))
    async with app_client(app) as client:
        response = await client.get(READY)
        pong = await app.state.redis.ping()

    assert response.status_code == 200
    assert response.json()["checks"]["redis"]["status"] == "ok"
    assert pong is True


async def test_readiness_is_503_when_redis_points_at_a_closed_port() -> None:
    settings = load_settings(
        redis_url="redis://:redis-pass-123@127.0.0.1:1/0", health_check_timeout=0.5
    )

    async with app_client(create_app(settings)) as client:
        started = time.monotonic()
        ready = await client.get(READY)
        elapsed = time.monotonic() - started
        live = await client.get(LIVE)

    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"]["status"] == "failed"
    assert ready.json()["checks"]["database"]["status"] == "ok"
    assert "redis-pass-123" not in ready.text
    assert elapsed < 3
    assert live.status_code == 200


async def test_results_are_reused_briefly_so_probe_storms_run_each_check_once() -> None:
    runs = 0

    async def counted(app: Starlette) -> None:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.05)

    app = create_app(load_settings(health_cache_seconds=5))
    register_check(app, HealthCheck("counted", counted))
    async with app_client(app) as client:
        responses = await asyncio.gather(*(client.get(READY) for _ in range(50)))
        again = await client.get(READY)

    assert {response.status_code for response in responses} == {200}
    assert again.status_code == 200
    assert runs == 1


async def test_without_caching_each_probe_runs_the_checks() -> None:
    runs = 0

    async def counted(app: Starlette) -> None:
        nonlocal runs
        runs += 1

    app = create_app(load_settings(health_cache_seconds=0))
    register_check(app, HealthCheck("counted", counted))
    async with app_client(app) as client:
        for _ in range(3):
            await client.get(READY)

    assert runs == 3


@pytest.fixture
def recorded_sigterm() -> Iterator[list[int]]:
    """A stand-in for the server's SIGTERM handler, restored afterwards."""
    received: list[int] = []

    def server_handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = signal.signal(signal.SIGTERM, server_handler)
    yield received
    signal.signal(signal.SIGTERM, previous)


async def test_a_stop_signal_makes_readiness_503_at_once_and_reaches_the_server(
    recorded_sigterm: list[int],
) -> None:
    async with app_client(create_app()) as client:
        before = await client.get(READY)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0)  # let the interpreter run the Python-level handler
        during = await client.get(READY)
        live = await client.get(LIVE)

    assert before.status_code == 200
    assert during.status_code == 503
    assert during.json() == {"status": "draining", "checks": {}}
    assert live.status_code == 200
    assert recorded_sigterm == [signal.SIGTERM]
    restored = signal.getsignal(signal.SIGTERM)
    assert getattr(restored, "__name__", None) == "server_handler"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_under_uvicorn_a_request_in_flight_finishes_after_sigterm(tmp_path: Path) -> None:
    (tmp_path / "slow_app.py").write_text(
        textwrap.dedent(
            """
            import asyncio
            from pathlib import Path
            from omnistack_core import create_app

            app = create_app()

            @app.get("/slow")
            async def slow() -> dict[str, str]:
                Path("slow-started").touch()  # for the test to wait for
                await asyncio.sleep(1.0)
                return {"finished": "yes"}
            """
        )
    )
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "slow_app:app",
            "--port",
            str(port),
            "--timeout-graceful-shutdown",
            "5",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"

        def live() -> bool:
            if server.poll() is not None:
                pytest.fail(f"uvicorn exited: {server.stdout.read() if server.stdout else ''}")
            try:
                return httpx.get(base + LIVE).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(live, timeout=30, message="uvicorn never answered")
        with httpx.Client(base_url=base, timeout=10) as client:
            pending = client.build_request("GET", "/slow")
            result: dict[str, httpx.Response] = {}
            thread = threading.Thread(target=lambda: result.update(slow=client.send(pending)))
            thread.start()
            wait_until(
                (tmp_path / "slow-started").exists,
                timeout=10,
                message="the request never reached the app",
            )
            server.send_signal(signal.SIGTERM)
            thread.join(timeout=10)
        output, _ = server.communicate(timeout=15)
    finally:
        server.kill()

    assert result["slow"].status_code == 200
    assert result["slow"].json() == {"finished": "yes"}
    # uvicorn re-raises the signal once it has shut down cleanly, so it exits "by" SIGTERM.
    assert server.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in output
