"""The Grafana dashboard: valid JSON whose queries read only metrics we export, all of them.

Derived from the registry, not from a list kept here: a metric renamed in the code fails the
panel that still reads the old name, and a new metric fails until a panel shows it.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.monitoring.promql import (
    DASHBOARDS,
    exported_families,
    exported_series_names,
    metric_names,
    selectors,
)

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def dashboard() -> dict[str, Any]:
    [path] = DASHBOARDS
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def queries() -> list[str]:
    """The PromQL of every panel."""
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def variable_metrics() -> set[str]:
    """The metrics the query variables list label values of (Grafana's label_values)."""
    found = set()
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((\w+), *(\w+)\)", variable["query"]["query"])
            assert match, variable["query"]
            found.add(match.group(1))
    return found


def test_the_dashboard_is_an_importable_grafana_dashboard() -> None:
    board = dashboard()

    assert board["uid"] == "omnistack-service"
    assert board["title"]
    assert isinstance(board["schemaVersion"], int)
    assert {variable["name"] for variable in board["templating"]["list"]} == {"datasource", "job"}
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    assert len(panels()) >= 10


def test_every_panel_queries_the_chosen_data_source() -> None:
    for panel in panels():
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]


def test_every_query_reads_only_metrics_we_export() -> None:
    exported = exported_series_names()
    for query in queries():
        names = metric_names(query)
        assert names, query
        assert names <= exported, (query, names - exported)
    assert variable_metrics() == {"http_requests_total"} <= exported


def test_every_panel_query_is_limited_to_the_chosen_services() -> None:
    for panel in panels():
        for target in panel["targets"]:
            for name, matchers in selectors(target["expr"]):
                assert 'job=~"$job"' in matchers, (panel["title"], name)


def test_every_metric_we_export_has_a_panel() -> None:
    read = {name for query in queries() for name in metric_names(query)}
    for family in exported_families():
        assert family.series_names() & read, f"no panel shows {family.name}"


def test_the_overview_shows_what_the_alerts_watch() -> None:
    overview = {panel["title"] for panel in panels() if panel["gridPos"]["y"] == 1}

    assert overview == {"Request rate", "Error rate", "p95 latency", "Job queue depth"}


def test_every_query_parses_as_promql(promtool: str, tmp_path: Path) -> None:
    # promtool parses expressions in rule files: each query becomes a recording rule, with
    # Grafana's variables given values Prometheus accepts.
    rules = [
        {
            "record": f"dashboard:query_{index}",
            "expr": query.replace("$__rate_interval", "5m").replace("$job", ".+"),
        }
        for index, query in enumerate(queries())
    ]
    rule_file = tmp_path / "dashboard.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = subprocess.run(
        [promtool, "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout
