"""The table: each figure per target, the ratio that matters, issue 20's goal, whether it is met.

Goals are read against the every-module service ("all"); the default service's figures are
beside it for context. Printed as text, written as JSON (everything measured, every round)
and as markdown.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omnistack_core.settings import Settings

COLUMNS = ("bare", "fsft", "default", "all")
HEADERS = ("figure", "bare", "FSFT", "default", "all", "all against", "goal", "met")

RECYCLE_SECONDS: int = Settings.model_fields["db_pool_recycle"].default
POOL_SIZE: int = Settings.model_fields["db_pool_size"].default
"""Our services run with the settings' defaults: one process, its pool of this size."""


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    figure: str
    values: dict[str, str]
    ratio: str
    goal: str
    met: bool | None

    def cells(self) -> list[str]:
        met = {True: "yes", False: "NO", None: "—"}[self.met]
        return [
            self.figure,
            *(self.values.get(column, "—") for column in COLUMNS),
            self.ratio,
            self.goal,
            met,
        ]


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or not theirs:
        return None
    return ours / theirs


def _times(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def _all_met(*checks: bool | None) -> bool | None:
    if any(check is None for check in checks):
        return None
    return all(checks)


def _at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def _at_least(value: float | None, limit: float) -> bool | None:
    return None if value is None else value >= limit


def build_rows(results: dict[str, Any]) -> list[Row]:
    """The table's rows from what :mod:`benchmarks.service.__main__` measured."""
    starts: dict[str, dict[str, Any]] = results["starts"]
    load: dict[str, dict[str, Any]] = results["load"]
    rows: list[Row] = []

    def per_target(pick: Callable[[str], float | None], digits: int = 0) -> dict[str, str]:
        return {name: _number(pick(name), digits) for name in COLUMNS}

    def start_value(key: str) -> Callable[[str], float | None]:
        return lambda name: starts.get(name, {}).get(key)

    start = start_value("start_ms")
    against_bare = _ratio(start("all"), start("bare"))
    against_peer = _ratio(start("all"), start("fsft"))
    rows.append(
        Row(
            "process start → readiness 200, ms",
            per_target(start),
            f"{_times(against_bare)} bare; {_times(against_peer)} FSFT",
            "≤ 1.8x bare, ≤ 0.7x FSFT",
            _all_met(_at_most(against_bare, 1.8), _at_most(against_peer, 0.7)),
        )
    )
    first = start_value("rss_first_mib")
    ratio = _ratio(first("all"), first("fsft"))
    rows.append(
        Row(
            "RSS after first 200, MiB",
            per_target(first, 1),
            f"{_times(ratio)} FSFT",
            "≤ 0.9x FSFT",
            _at_most(ratio, 0.9),
        )
    )
    warm: dict[str, float] = results["rss_warm_mib"]
    further: dict[str, list[float]] = results["rss_further_mib"]
    ratio = _ratio(warm.get("all"), warm.get("fsft"))
    flat = _flat(warm.get("all"), further.get("all", []))
    rows.append(
        Row(
            "warm RSS after the load rounds, MiB",
            per_target(warm.get, 1),
            f"{_times(ratio)} FSFT",
            "≤ 1.0x FSFT",
            _at_most(ratio, 1.0),
        )
    )
    rows.append(
        Row(
            "RSS after each further round, MiB",
            {
                name: ", ".join(f"{value:.1f}" for value in values)
                for name, values in further.items()
            },
            "flat" if flat else ("growing" if flat is False else "—"),
            "flat (within 5 %)",
            flat,
        )
    )
    overhead: dict[str, float] | None = results["overhead_us"]
    if overhead is None:
        rows.append(Row("in-process cost per request, µs", {}, "not measured", "≤ +25 µs", None))
    else:
        added = overhead["stack_added_us"]
        rows.append(
            Row(
                "in-process cost per request, µs (peer stack in the FSFT column)",
                {
                    "bare": _number(overhead["bare_us"], 1),
                    "fsft": f"+{overhead['peer_added_us']:.1f}",
                    "all": f"+{added:.1f}",
                },
                f"+{added:.1f} µs over bare",
                "≤ +25 µs",
                _at_most(added, 25),
            )
        )

    def rate(route: str) -> Callable[[str], float | None]:
        return lambda name: (load.get(route, {}).get(name) or {}).get("rate")

    def p99(route: str) -> Callable[[str], float | None]:
        return lambda name: (load.get(route, {}).get(name) or {}).get("p99_ms")

    liveness = rate("liveness")
    ratio = _ratio(liveness("all"), liveness("bare"))
    rows.append(
        Row(
            "liveness req/s",
            per_target(liveness),
            f"{_times(ratio)} bare",
            "≥ 0.95x bare",
            _at_least(ratio, 0.95),
        )
    )
    for route, figure, limit in (
        ("me", "who am I req/s", 4.0),
        ("create", "create item req/s", 1.5),
        ("list", "list my items (100 rows) req/s", 2.5),
        ("read", "read one item req/s", 2.5),
    ):
        pick = rate(route)
        ratio = _ratio(pick("all"), pick("fsft"))
        rows.append(
            Row(
                figure,
                per_target(pick),
                f"{_times(ratio)} FSFT",
                f"≥ {limit:g}x FSFT",
                _at_least(ratio, limit),
            )
        )
        if route == "create":
            latency = p99("create")
            ratio = _ratio(latency("all"), latency("fsft"))
            rows.append(
                Row(
                    "create item p99, ms",
                    per_target(latency, 1),
                    f"{_times(ratio)} FSFT",
                    "≤ 1.0x FSFT",
                    _at_most(ratio, 1.0),
                )
            )
    # Connections replaced for their age are not churn (see the notes).
    recycled = _recycled(results)
    for connections in results["connections"]:

        def opened(name: str, connections: int = connections) -> float | None:
            count = _sessions_opened(results, name, str(connections))
            return None if count is None else float(count)

        ours = {name: value for name in ("default", "all") if (value := opened(name)) is not None}
        rows.append(
            Row(
                f"PostgreSQL sessions opened, DB routes at {connections} connections",
                per_target(opened),
                "",
                "0 (ours; age replacements aside)",
                all(
                    value == 0 or (name, str(connections)) in recycled
                    for name, value in ours.items()
                )
                if ours
                else None,
            )
        )
    workers: dict[str, Any] = results["workers"]
    for route, figure in (("me", "who am I"), ("read", "read one item")):
        one, two = rate(route)("all"), rate(route)("all-w2")
        rows.append(
            Row(
                f"{figure} req/s, WEB_CONCURRENCY=1 / 2 (every module)",
                {"all": f"{_number(one)} / {_number(two)}"},
                f"{_times(_ratio(two, one))} with 2",
                "reported",
                None,
            )
        )
    rows.append(
        Row(
            "WEB_CONCURRENCY=2: processes, warm RSS MiB (tree)",
            {"all": f"{workers.get('processes', '—')}, {_number(workers.get('rss_mib'), 1)}"},
            "",
            "reported",
            None,
        )
    )
    return rows


def _flat(warm: float | None, further: Sequence[float]) -> bool | None:
    """Whether the further rounds stay within 5 % of the warm figure."""
    if warm is None or not further:
        return None
    return max(further) <= warm * 1.05 and min(further) >= warm * 0.95


def text_table(rows: Sequence[Row]) -> str:
    cells = [list(HEADERS), *(row.cells() for row in rows)]
    widths = [max(len(line[column]) for line in cells) for column in range(len(HEADERS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def notes(results: dict[str, Any]) -> list[str]:
    """Invalid rounds (non-2xx, socket errors) and what was not measured."""
    found = []
    for kind in ("load", "churn_load"):
        for route, per_target in results[kind].items():
            for name, summary in per_target.items():
                if summary and summary["invalid_rounds"]:
                    found.append(
                        f"{route} on {name}: {summary['invalid_rounds']} invalid round(s), "
                        f"{summary['non2xx']} non-2xx responses (left out of the medians)"
                    )
    if results["overhead_us"] is None:
        found.append(f"in-process cost: not measured ({results['overhead_note']})")
    found += [
        f"{name} opened {opened} PostgreSQL session(s) at {connections} connections after "
        f"running {age / 60:.0f} min, past DB_POOL_RECYCLE ({RECYCLE_SECONDS} s): its pool "
        "replaces a connection that old when it is next checked out, which is not churn"
        for (name, connections), (opened, age) in _recycled(results).items()
    ]
    return found


def _sessions_opened(results: dict[str, Any], name: str, connections: str) -> int | None:
    """Sessions ``name`` opened over the counted database rounds at ``connections``; None
    when it ran none."""
    counts = [
        per_target[name][connections]
        for per_target in results["sessions"].values()
        if connections in per_target.get(name, {})
    ]
    return sum(counts) if counts else None


def _recycled(results: dict[str, Any]) -> dict[tuple[str, str], tuple[int, int]]:
    """(service, connections) -> (sessions opened, seconds it had run), for our services'
    counts taken after they had run past ``DB_POOL_RECYCLE``.

    A pool replaces a connection at checkout once it is that old: a full run's 64-connection
    rounds come past it. That opens one session per pooled connection at most; more is churn.
    """
    recycled = {}
    for name in ("default", "all"):
        for connections, age in results.get("server_age_s", {}).get(name, {}).items():
            opened = _sessions_opened(results, name, connections) or 0
            if 0 < opened <= POOL_SIZE and age > RECYCLE_SECONDS:
                recycled[(name, connections)] = (opened, age)
    return recycled


def machine_lines(
    machine: dict[str, Any], target_versions: dict[str, dict[str, str]] | None = None
) -> list[str]:
    """The machine, then the key packages of each target's own virtualenv, then the harness's
    (which the in-process row runs in)."""
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items())
    per_target = [
        f"{name}'s virtualenv: " + ", ".join(f"{package} {v}" for package, v in versions.items())
        for name, versions in (target_versions or {}).items()
    ]
    return [
        (
            f"CPU: {machine['cpu']}, {machine['cores']} cores "
            f"(load average at start {machine['load_average']})"
        ),
        (
            f"System: {machine['system']}; Python {machine['python']}; "
            f"PostgreSQL {machine['postgresql']}; {machine['wrk']}"
        ),
        f"Commit: {machine['commit']}",
        *per_target,
        f"Harness's virtualenv (the in-process row): {packages}",
    ]


def write(out: Path, results: dict[str, Any], rows: Sequence[Row]) -> tuple[Path, Path]:
    """``bench.json`` and ``bench.md`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    document = {**results, "table": [dict(zip(HEADERS, row.cells(), strict=True)) for row in rows]}
    json_path = out / "bench.json"
    json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    mode = results["mode"]
    lines = [
        f"# Service benchmark ({mode['name']} mode)",
        "",
        (
            f"{mode['rounds']} interleaved rounds of {mode['round_seconds']} s per route and "
            f"target, wrk 1 thread, {mode['connections']} connections; {mode['starts']} starts "
            f"per target; total run {results['total_seconds']:.0f} s (set-up, virtualenvs "
            f"included: {results['setup_seconds']:.0f} s). Medians across rounds."
        ),
        "",
        markdown_table(rows),
        "",
        "## Machine",
        "",
        *(f"- {line}" for line in machine_lines(results["machine"], results["target_versions"])),
    ]
    found = notes(results)
    if found:
        lines += ["", "## Notes", "", *(f"- {line}" for line in found)]
    markdown_path = out / "bench.md"
    markdown_path.write_text("\n".join(lines) + "\n")
    return json_path, markdown_path
