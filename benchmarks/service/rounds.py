"""The measurements: timed starts, then load in interleaved rounds, each target side by side.

Every figure compares targets measured in the same rounds: within a round each target takes
its turn on a route, and the order rotates from round to round, so a burst of noise from
the rest of the machine lands on different targets in different rounds; medians across
rounds are reported.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.service.database import name_of, sessions
from benchmarks.service.load import Result, Wrk
from benchmarks.service.targets import Server, Target, start_ready

T = TypeVar("T")

DB_ROUTES = ("me", "create", "list", "read")
LOAD_ROUTES = ("liveness", *DB_ROUTES)
FURTHER_ROUTES = ("me", "read", "create")


@dataclass(frozen=True)
class Mode:
    """How long a run takes: ``short`` for a check, ``full`` for the release table."""

    name: str
    starts: int
    rounds: int
    round_seconds: int
    warmup_seconds: int
    further_rounds: int
    further_seconds: int
    churn_seconds: int
    trend_targets: tuple[str, ...]
    """Those measured at 64 connections and in the further rounds."""
    connections: int = 16
    churn_connections: int = 64
    users: int = 1000
    overhead_arguments: tuple[str, ...] = ()


# Short rounds, so that the whole run fits in five minutes on two cores: a check that every
# figure is measured and roughly where it lies, not the figures to publish.
SHORT = Mode(
    name="short",
    starts=5,
    rounds=3,
    round_seconds=2,
    warmup_seconds=1,
    further_rounds=2,
    further_seconds=1,
    churn_seconds=1,
    # The default service's churn and memory trend only in full mode: the goals are the
    # every-module service's.
    trend_targets=("fsft", "all"),
    overhead_arguments=("--requests", "1000", "--rounds", "9", "--http-seconds", "0"),
)
FULL = Mode(
    name="full",
    starts=11,
    rounds=5,
    round_seconds=15,
    warmup_seconds=5,
    further_rounds=5,
    further_seconds=10,
    churn_seconds=10,
    trend_targets=("fsft", "default", "all"),
    overhead_arguments=("--requests", "2000", "--rounds", "21", "--http-seconds", "0"),
)


def rotated(items: Sequence[T], by: int) -> list[T]:
    """``items`` rotated left by ``by``: each round starts with a different target."""
    if not items:
        return []
    shift = by % len(items)
    return [*items[shift:], *items[:shift]]


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def measure_starts(
    targets: Sequence[Target], logs: Path, count: int, say: Callable[[str], None]
) -> dict[str, dict[str, Any]]:
    """``count`` timed starts per target, interleaved: start to readiness, RSS at that 200."""
    starts: dict[str, list[float]] = {target.name: [] for target in targets}
    rss: dict[str, list[float]] = {target.name: [] for target in targets}
    processes: dict[str, int] = {}
    for run in range(count):
        for target in rotated(targets, run):
            server, seconds = start_ready(target, logs, f"start-{run}")
            try:
                mib, processes[target.name] = server.rss()
            finally:
                server.stop()
            starts[target.name].append(seconds * 1000)
            rss[target.name].append(mib)
        say(f"  start round {run + 1}/{count} done")
    return {
        target.name: {
            "start_ms": median(starts[target.name]),
            "start_runs_ms": [round(value, 1) for value in starts[target.name]],
            "rss_first_mib": median(rss[target.name]),
            "rss_first_runs_mib": [round(value, 1) for value in rss[target.name]],
            "processes": processes[target.name],
        }
        for target in targets
    }


@dataclass
class LoadFigures:
    """What the load rounds found, per route and target."""

    results: dict[str, dict[str, list[Result]]] = field(default_factory=dict)
    """The rounds at the usual connection count."""
    churn_results: dict[str, dict[str, list[Result]]] = field(default_factory=dict)
    """The rounds at the churn rows' connection count."""
    sessions: dict[str, dict[str, dict[int, int]]] = field(default_factory=dict)
    """PostgreSQL sessions opened: route, target, connections."""
    server_age: dict[str, dict[int, float]] = field(default_factory=dict)
    """Seconds the target had been running when its last counted round at a connection
    count ended: a pool replaces connections older than ``DB_POOL_RECYCLE``."""

    def add(self, route: str, target: str, result: Result, *, churn: bool = False) -> None:
        results = self.churn_results if churn else self.results
        results.setdefault(route, {}).setdefault(target, []).append(result)

    def add_sessions(
        self, route: str, target: str, connections: int, opened: int, age: float
    ) -> None:
        per_target = self.sessions.setdefault(route, {}).setdefault(target, {})
        per_target[connections] = per_target.get(connections, 0) + opened
        self.server_age.setdefault(target, {})[connections] = age


def summarize(results: Sequence[Result]) -> dict[str, Any]:
    """Medians over a target's valid rounds on a route, and every round as measured."""
    valid = [result for result in results if result.valid]
    return {
        "rate": median([result.rate for result in valid]),
        "p99_ms": median([result.p99_ms for result in valid]),
        "invalid_rounds": len(results) - len(valid),
        "non2xx": sum(result.non2xx for result in results),
        "rounds": [result.as_dict() for result in results],
    }


class Driver:
    """Runs wrk on the running servers, counting the sessions each round opens."""

    def __init__(
        self, servers: dict[str, Server], wrk: Wrk, figures: LoadFigures, connections: int
    ) -> None:
        self.servers = servers
        self.wrk = wrk
        self.figures = figures
        self.connections = connections

    def targets_of(self, route: str, names: Sequence[str] | None = None) -> list[str]:
        return [
            name
            for name, server in self.servers.items()
            if route in server.target.routes and (names is None or name in names)
        ]

    def run(
        self, route: str, name: str, seconds: int, connections: int, *, record: bool = True
    ) -> Result:
        server = self.servers[name]
        server.check_alive()
        database = server.target.database
        before = sessions(name_of(database)) if database else 0
        result = self.wrk.run(
            server.base, server.target.routes[route], seconds=seconds, connections=connections
        )
        if record:
            self.figures.add(route, name, result, churn=connections != self.connections)
            if database and route in DB_ROUTES:
                # Sessions reach pg_stat_database with the backend's statistics: give the
                # round's last ones a moment to land.
                time.sleep(0.2)
                opened = sessions(name_of(database)) - before
                self.figures.add_sessions(route, name, connections, opened, server.age())
        return result


def run_load(driver: Driver, mode: Mode, say: Callable[[str], None]) -> None:
    """Warm-up, then ``mode.rounds`` interleaved rounds of every route at 16 connections."""
    for route in LOAD_ROUTES:
        for name in driver.targets_of(route):
            driver.run(route, name, mode.warmup_seconds, mode.connections, record=False)
    say("  warm-up done")
    for round_number in range(mode.rounds):
        for index, route in enumerate(LOAD_ROUTES):
            for name in rotated(driver.targets_of(route), round_number + index):
                driver.run(route, name, mode.round_seconds, mode.connections)
        say(f"  load round {round_number + 1}/{mode.rounds} done")


def run_churn(driver: Driver, mode: Mode, names: Sequence[str]) -> None:
    """Each database route at 64 connections: a warm-up, then one counted round."""
    for index, route in enumerate(DB_ROUTES):
        for name in rotated(driver.targets_of(route, names), index):
            driver.run(route, name, mode.warmup_seconds, mode.churn_connections, record=False)
            driver.run(route, name, mode.churn_seconds, mode.churn_connections)


def run_further(
    driver: Driver, mode: Mode, names: Sequence[str], say: Callable[[str], None]
) -> dict[str, list[float]]:
    """``mode.further_rounds`` more identical rounds of the database routes; RSS after each."""
    rss: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(mode.further_rounds):
        for index, route in enumerate(FURTHER_ROUTES):
            for name in rotated(driver.targets_of(route, names), round_number + index):
                driver.run(route, name, mode.further_seconds, mode.connections, record=False)
        for name in names:
            rss[name].append(round(driver.servers[name].rss()[0], 1))
        say(f"  further round {round_number + 1}/{mode.further_rounds} done")
    return rss
