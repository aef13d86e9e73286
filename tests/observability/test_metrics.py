from __future__ import annotations

import random
import string
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from omnistack_core import create_app, load_settings
from omnistack_core.db import DbSession
from omnistack_core.testing import app_client

parser = pytest.importorskip("prometheus_client.parser", reason="needs the observability extra")

METRICS = "/api/v1/public/metrics"


def build_app(**settings: object) -> FastAPI:
    app = create_app(load_settings(**settings))

    @app.get("/items/{item_id}")
    async def read_item(item_id: int, session: DbSession) -> dict[str, int]:
        await session.execute(text("SELECT 1"))
        return {"item_id": item_id}

    return app


def samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in parser.text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(exposition: str, name: str, **labels: str) -> float:
    return samples(exposition).get((name, frozenset(labels.items())), 0.0)


async def test_requests_are_counted_by_route_template_method_and_status() -> None:
    async with app_client(build_app()) as client:
        before = (await client.get(METRICS)).text
        for item_id in (1, 2, 3):
            await client.get(f"/items/{item_id}")
        await client.get("/items/not-a-number")
        after = (await client.get(METRICS)).text

    route = "/items/{item_id}"
    ok = {"method": "GET", "route": route, "status": "200"}
    invalid = {"method": "GET", "route": route, "status": "422"}
    assert (
        value(after, "http_requests_total", **ok) - value(before, "http_requests_total", **ok) == 3
    )
    assert (
        value(after, "http_requests_total", **invalid)
        - value(before, "http_requests_total", **invalid)
        == 1
    )
    count = "http_request_duration_seconds_count"
    assert (
        value(after, count, method="GET", route=route)
        - value(before, count, method="GET", route=route)
        == 4
    )
    assert not any("/items/1" in dict(labels).get("route", "") for _, labels in samples(after))


async def test_a_thousand_random_paths_add_no_series() -> None:
    alphabet = string.ascii_lowercase + string.digits
    async with app_client(build_app()) as client:
        await client.get("/warm/up/the/unmatched/series")
        before = set(samples((await client.get(METRICS)).text))
        for _ in range(1000):
            path = "/".join("".join(random.choices(alphabet, k=8)) for _ in range(3))  # noqa: S311
            await client.get(f"/{path}")
        after_text = (await client.get(METRICS)).text

    unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
    assert set(samples(after_text)) == before
    assert value(after_text, "http_requests_total", **unmatched) >= 1001


async def test_unusual_methods_share_one_label() -> None:
    async with app_client(build_app()) as client:
        await client.request("BREW", "/items/1")
        exposition = (await client.get(METRICS)).text

    methods = {dict(labels).get("method") for _, labels in samples(exposition)}
    assert "BREW" not in methods
    assert (
        value(
            exposition,
            "http_requests_total",
            method="OTHER",
            route="/items/{item_id}",
            status="405",
        )
        >= 1
    )


async def test_in_progress_returns_to_zero_after_requests() -> None:
    async with app_client(build_app()) as client:
        await client.get("/items/1")
        exposition = (await client.get(METRICS)).text

    # The scrape itself is the one GET in progress while the exposition is written.
    assert value(exposition, "http_requests_in_progress", method="GET") == 1


async def test_database_queries_are_counted_by_operation() -> None:
    async with app_client(build_app()) as client:
        before = (await client.get(METRICS)).text
        await client.get("/items/1")
        await client.get("/items/2")
        after = (await client.get(METRICS)).text

    selects = value(after, "db_queries_total", operation="select") - value(
        before, "db_queries_total", operation="select"
    )
    assert selects == 2
    assert value(after, "db_query_duration_seconds_count", operation="select") >= 2


async def test_the_metrics_endpoint_can_require_a_bearer_token() -> None:
    async with app_client(build_app(metrics_token="scrape-me-0123456789")) as client:
        anonymous = await client.get(METRICS)
        wrong = await client.get(METRICS, headers={"Authorization": "Bearer nope"})
        right = await client.get(METRICS, headers={"Authorization": "Bearer scrape-me-0123456789"})

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert right.headers["cache-control"] == "no-store"
    assert "http_requests_total" in right.text


async def test_metrics_can_be_turned_off() -> None:
    async with app_client(build_app(metrics_enabled=False)) as client:
        response = await client.get(METRICS)

    assert response.status_code == 404


def test_several_processes_add_up_in_multiprocess_mode(tmp_path: Path) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    serve_requests = textwrap.dedent(
        """
        import asyncio, sys
        from omnistack_core import create_app
        from omnistack_core.testing import app_client

        async def main(count):
            app = create_app()
            async with app_client(app) as client:
                for _ in range(count):
                    await client.get("/api/v1/public/health")

        asyncio.run(main(int(sys.argv[1])))
        """
    )
    scrape = textwrap.dedent(
        """
        from omnistack_core.observability.metrics import exposition
        print(exposition().decode())
        """
    )
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory), "PATH": "/usr/bin:/bin"}
    workers = [
        subprocess.Popen([sys.executable, "-c", serve_requests, str(count)], cwd=tmp_path, env=env)
        for count in (3, 4)
    ]
    assert [worker.wait(timeout=60) for worker in workers] == [0, 0]

    result = subprocess.run(
        [sys.executable, "-c", scrape],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )

    health = {"method": "GET", "route": "/api/v1/public/health", "status": "200"}
    assert value(result.stdout, "http_requests_total", **health) == 7
    assert value(result.stdout, "http_requests_in_progress", method="GET") == 0
