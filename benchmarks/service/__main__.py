"""``python -m benchmarks.service [--full] [--out DIR]``: issue 20's table, measured in one run.

Short mode (the default) fits in five minutes on a 2-core machine; ``--full`` is the release
table. The steps: generate the services, build every target's own virtualenv, migrate the
services' databases, seed the peer, time the starts, start every target once more and load
them in interleaved rounds, count connection churn at 64 connections, run further rounds for
the memory trend, then the in-process row.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from benchmarks.service import overhead, services, venvs
from benchmarks.service.database import create_database, drop_database, insert_items
from benchmarks.service.jwks import HttpsIssuer, user_ids
from benchmarks.service.load import WRK, Result, Wrk
from benchmarks.service.machine import describe
from benchmarks.service.report import build_rows, machine_lines, notes, text_table, write
from benchmarks.service.rounds import (
    FULL,
    SHORT,
    Driver,
    LoadFigures,
    Mode,
    measure_starts,
    run_churn,
    run_further,
    run_load,
    summarize,
)
from benchmarks.service.targets import (
    Route,
    Server,
    Target,
    TargetError,
    start,
    start_ready,
    wait_ready,
)
from omnistack_core.testing.services import flush_redis
from tests.template.rendering import REPOSITORY

LISTED_ITEMS = 100
BEGAN = time.perf_counter()


def say(message: str) -> None:
    """Progress on stderr, with the seconds since the run began: the table goes to stdout."""
    print(f"[{time.perf_counter() - BEGAN:5.0f} s] {message}", file=sys.stderr, flush=True)


def seed_items(servers: dict[str, Server], database_urls: dict[str, str]) -> None:
    """One user per target with ``LISTED_ITEMS`` items; the list and read routes use them."""
    for name in ("default", "all"):
        target = servers[name].target
        owner = user_ids(name, 1)[0]
        ids = insert_items(database_urls[name], owner, LISTED_ITEMS)
        owner_token = (target.routes["me"].tokens[0],)
        target.routes["list"] = Route(
            "GET", f"/api/v1/items?limit={LISTED_ITEMS}", tokens=owner_token
        )
        target.routes["read"] = Route("GET", f"/api/v1/items/{ids[0]}", tokens=owner_token)
    peer = servers["fsft"]
    token = peer.target.routes["me"].tokens[0]
    create = peer.target.routes["create"]
    ids = []
    with httpx.Client(base_url=peer.base, timeout=30) as client:
        for _ in range(LISTED_ITEMS):
            response = client.post(
                create.path,
                content=create.body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            if response.status_code >= 300:
                raise TargetError(
                    f"FSFT peer: seeding an item: {response.status_code} {response.text}"
                )
            ids.append(response.json()["id"])
    peer.target.routes["list"] = Route("GET", "/api/v1/items/?skip=0&limit=100", tokens=(token,))
    peer.target.routes["read"] = Route("GET", f"/api/v1/items/{ids[0]}", tokens=(token,))


def check_routes(server: Server) -> None:
    """One request per route before any round: a target that answers wrongly fails here."""
    with httpx.Client(base_url=server.base, timeout=30) as client:
        for name, route in server.target.routes.items():
            headers = {"Content-Type": "application/json"} if route.body else {}
            if route.tokens:
                headers["Authorization"] = f"Bearer {route.tokens[-1]}"
            response = client.request(
                route.method, route.path, content=route.body or None, headers=headers
            )
            if not 200 <= response.status_code < 300:
                raise TargetError(
                    f"{server.target.label}: {name} ({route.method} {route.path}) answered "
                    f"{response.status_code}: {response.text[:500]}\n{server.output_tail(10)}"
                )
            if name == "list":
                body = response.json()
                # Ours answer {"items": [...], "next_before": ...}; FSFT {"data": [...]}.
                rows = body if isinstance(body, list) else body.get("items", body.get("data", []))
                if len(rows) < LISTED_ITEMS:
                    raise TargetError(f"{server.target.label}: the list holds {len(rows)} rows")


def build_venvs(projects: dict[str, Path], work: Path) -> dict[str, venvs.Venv]:
    """Every target's own virtualenv, built side by side (uv spends most of it waiting)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        builds = {
            "bare": pool.submit(venvs.bare_venv, services.LABELS["bare"], work / "venv-bare"),
            "fsft": pool.submit(venvs.peer_venv, services.LABELS["fsft"], work / "venv-fsft"),
            **{
                name: pool.submit(venvs.service_venv, services.LABELS[name], project)
                for name, project in projects.items()
            },
        }
        built = {name: build.result() for name, build in builds.items()}
    say(f"virtualenvs built in {time.perf_counter() - started:.1f} s")
    return built


def prepare(
    mode: Mode, work: Path, logs: Path, cleanup: contextlib.ExitStack
) -> tuple[dict[str, Target], dict[str, str], dict[str, venvs.Venv]]:
    """Generate, build the virtualenvs, migrate and seed: the targets, our services' and the
    peer's databases, and each target's virtualenv."""
    say("generating the services…")
    issuer = cleanup.enter_context(HttpsIssuer(work))
    flush_redis(services.REDIS_URL)
    cleanup.callback(flush_redis, services.REDIS_URL)
    projects = services.generate(work)
    say("building each target's virtualenv…")
    environments = build_venvs(projects, work)
    # The image compiles its own code at build (the virtualenvs compiled what they installed).
    services.compile_bytecode(
        *(project / "app" for project in projects.values()), REPOSITORY / "benchmarks" / "peers"
    )
    database_urls: dict[str, str] = {}
    for name in ("default", "all", "fsft"):
        database_urls[name] = create_database()
        cleanup.callback(drop_database, database_urls[name])
    say("migrating, seeding the peer, minting tokens…")
    targets: dict[str, Target] = {"bare": services.bare_target(environments["bare"])}
    for name in ("default", "all"):
        targets[name] = services.service_target(
            name, projects[name], database_urls[name], issuer, mode.users, venv=environments[name]
        )
    # The migrations and the peer's seed are separate processes: run them side by side.
    with ThreadPoolExecutor(max_workers=3) as pool:
        peer = pool.submit(
            services.peer_target, database_urls["fsft"], mode.users, environments["fsft"]
        )
        migrations = [
            pool.submit(services.migrate, targets[name], environments[name])
            for name in ("default", "all")
        ]
        for migration in migrations:
            migration.result()
        targets["fsft"] = peer.result()
    # One untimed start each, all at once, writing bytecode for anything the builds left
    # uncompiled (and warming the file cache); the timed starts write none, as the image.
    started = time.perf_counter()
    first = [
        start(target, logs, "bytecode", {"PYTHONDONTWRITEBYTECODE": ""})
        for target in targets.values()
    ]
    try:
        for server in first:
            wait_ready(server, started)
    finally:
        for server in first:
            server.stop()
    return targets, database_urls, environments


def run(mode: Mode, work: Path, cleanup: contextlib.ExitStack) -> dict[str, Any]:
    logs = work / "logs"
    logs.mkdir()
    setup_started = time.perf_counter()
    targets, database_urls, environments = prepare(mode, work, logs, cleanup)
    setup_seconds = time.perf_counter() - setup_started
    say(f"set-up (generation, virtualenvs, migrations, seed) took {setup_seconds:.0f} s")
    say(f"timing {mode.starts} starts per target…")
    starts = measure_starts(list(targets.values()), logs, mode.starts, say)

    servers: dict[str, Server] = {}

    def stop_servers() -> None:
        for server in servers.values():
            server.stop()

    cleanup.callback(stop_servers)
    for name, target in targets.items():
        servers[name] = start_ready(target, logs, "load")[0]
    seed_items(servers, database_urls)
    workers = dataclasses.replace(
        targets["all"],
        name="all-w2",
        label="OmniStack every module, WEB_CONCURRENCY=2",
        env={**targets["all"].env, "WEB_CONCURRENCY": "2"},
        routes={key: targets["all"].routes[key] for key in ("me", "read")},
    )
    servers["all-w2"] = start_ready(workers, logs, "load")[0]
    for server in servers.values():
        check_routes(server)

    say("load rounds…")
    figures = LoadFigures()
    driver = Driver(servers, Wrk(work), figures, mode.connections)
    run_load(driver, mode, say)
    rss_warm = {name: round(server.rss()[0], 1) for name, server in servers.items()}
    workers_mib, workers_processes = servers["all-w2"].rss()
    # The further rounds repeat the load rounds before anything else runs, so their memory
    # compares with the warm figure; 64 connections come after, as they grow the pools.
    say("further rounds for the memory trend…")
    rss_further = run_further(driver, mode, mode.trend_targets, say)
    say(f"churn at {mode.churn_connections} connections…")
    run_churn(driver, mode, mode.trend_targets)
    stop_servers()
    servers.clear()
    say("in-process cost per request…")
    overhead_us, overhead_note = overhead.measure(mode.overhead_arguments)

    def summaries(results: dict[str, dict[str, list[Result]]]) -> dict[str, dict[str, Any]]:
        return {
            route: {name: summarize(rounds) for name, rounds in per_target.items()}
            for route, per_target in results.items()
        }

    return {
        "setup_seconds": round(setup_seconds, 1),
        "venvs": {name: list(venv.packages) for name, venv in environments.items()},
        "target_versions": {name: venv.versions() for name, venv in environments.items()},
        "starts": starts,
        "load": summaries(figures.results),
        "churn_load": summaries(figures.churn_results),
        "sessions": {
            route: {
                name: {str(connections): count for connections, count in counts.items()}
                for name, counts in per_target.items()
            }
            for route, per_target in figures.sessions.items()
        },
        "connections": [mode.connections, mode.churn_connections],
        "server_age_s": {
            name: {str(connections): round(age) for connections, age in ages.items()}
            for name, ages in figures.server_age.items()
        },
        "rss_warm_mib": rss_warm,
        "rss_further_mib": rss_further,
        "workers": {"processes": workers_processes, "rss_mib": round(workers_mib, 1)},
        "overhead_us": overhead_us,
        "overhead_note": overhead_note,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.service", description=__doc__)
    parser.add_argument("--full", action="store_true", help="release mode: longer, more rounds")
    parser.add_argument(
        "--out", type=Path, default=Path("bench-results"), help="where bench.json and bench.md go"
    )
    arguments = parser.parse_args()
    mode = FULL if arguments.full else SHORT
    if not Path(WRK).exists():
        # Checked before the set-up, not a minute into it, when the first round starts.
        say(f"error: the load rounds need {WRK} (Debian: apt-get install wrk)")
        return 1
    machine = describe(REPOSITORY)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="omnistack-bench-") as folder,
            contextlib.ExitStack() as cleanup,
        ):
            measured = run(mode, Path(folder), cleanup)
    except TargetError as exc:
        say(f"error: {exc}")
        return 1
    results = {
        "mode": dataclasses.asdict(mode),
        "machine": machine,
        "total_seconds": round(time.perf_counter() - BEGAN, 1),
        **measured,
    }
    rows = build_rows(results)
    print(text_table(rows))
    print()
    for line in machine_lines(machine, results["target_versions"]):
        print(line)
    for line in notes(results):
        print(f"note: {line}")
    print(
        f"total run: {results['total_seconds']:.0f} s "
        f"(set-up, virtualenvs included: {results['setup_seconds']:.0f} s)"
    )
    json_path, markdown_path = write(arguments.out, results, rows)
    print(f"written: {json_path}, {markdown_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
