"""Requests per second and p95 latency with one API process against two, same load, one run.

Generates a service with every module, migrates a fresh PostgreSQL database, then drives the
same bounded load (signed-in ``GET /api/v1/me``: token verification, the CPU-bound part of a
request) first at one API process, then at two behind a round-robin client, each process a
single uvicorn worker. Prints both figures and the ratio.

On a 2-core machine the load generator takes one core's worth of CPU itself, so a second API
process has little idle CPU to use: expect close to 1x here. The figure that matters for a
real deploy is that two processes are not slower (no shared lock or pool serialises them).

    uv run python benchmarks/scale_out.py [--requests 3000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from omnistack_core.testing import create_test_database, drop_test_database  # noqa: E402
from omnistack_core.testing.issuer import LocalIssuer  # noqa: E402
from omnistack_core.testing.services import (  # noqa: E402
    DEFAULT_TEST_POSTGRES_URL,
    DEFAULT_TEST_REDIS_URL,
)
from tests.template.fleet import Api, Call, Fleet, Load, p95, wait_until_ready  # noqa: E402
from tests.template.rendering import ANSWER_SETS, render, snapshot  # noqa: E402
from tests.template.test_generated_project import UV, run  # noqa: E402


async def measure(
    fleet_apis: list[Api], calls: list[Call], concurrency: int
) -> tuple[float, float]:
    load = Load(fleet_apis, concurrency)
    await load.run(calls[: concurrency * 4])  # warm every worker's caches and connections
    started = time.perf_counter()
    results = await load.run(calls)
    elapsed = time.perf_counter() - started
    failed = [r for r in results if r.status != 200]
    if failed:
        raise SystemExit(f"{len(failed)} requests failed: {failed[:3]}")
    return len(results) / elapsed, p95([r.seconds for r in results])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, LocalIssuer() as issuer:
        work = Path(folder)
        answers = {
            **ANSWER_SETS["everything-supabase"],
            "omnistack_core_version": f"@ {REPOSITORY.as_uri()}",
        }
        (work / "template").mkdir()
        project = render(snapshot(work / "template"), work / "service", answers)
        run(project, UV, "sync", "--quiet", "--reinstall-package", "omnistack-core")
        database = create_test_database(DEFAULT_TEST_POSTGRES_URL)
        try:
            env = {
                "ENVIRONMENT": "test",
                "SECRET_KEY": "b" * 40,
                "DATABASE_URL": database,
                "REDIS_URL": DEFAULT_TEST_REDIS_URL.replace("/15", "/13"),
                "LOG_FORMAT": "json",
                "LOG_LEVEL": "WARNING",
                "AUTH_PROVIDER": "supabase",
                "SUPABASE_PROJECT_URL": issuer.url,
            }
            (work / "logs").mkdir()
            fleet = Fleet(project, env, work / "logs")
            fleet.migrate_at_once(1)
            token = issuer.supabase_token("bench-user")
            calls = [
                Call("me", "GET", "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
            ] * arguments.requests
            figures = {}
            try:
                for count in (1, 2):
                    apis = [fleet.start_api(f"api-{count}-{n}", workers=1) for n in range(count)]
                    for api in apis:
                        wait_until_ready(api)
                    figures[count] = asyncio.run(measure(apis, calls, arguments.concurrency))
                    for api in apis:
                        api.terminate()
                        api.wait()
            finally:
                fleet.stop()
        finally:
            drop_test_database(DEFAULT_TEST_POSTGRES_URL, database)
    print(f"{arguments.requests} signed-in requests, {arguments.concurrency} at a time")
    for count, (rate, latency) in figures.items():
        noun = "process" if count == 1 else "processes"
        print(f"  {count} API {noun:9}  {rate:7.0f} requests/s   p95 {latency * 1000:6.1f} ms")
    ratio = figures[2][0] / figures[1][0]
    print(f"  two against one:  {ratio:.2f}x requests/s")


if __name__ == "__main__":
    main()
