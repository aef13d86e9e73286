"""The Prometheus alert rules: valid, over our metrics, and firing when (and only when) meant.

Each file in rule_tests/ feeds synthetic series to one alert through ``promtool test rules``:
a case where it fires, with its labels and annotations, and cases where it must not.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring.promql import RULE_FILES, exported_series_names, metric_names

RULE_TESTS = sorted((Path(__file__).parent / "rule_tests").glob("*.yml"))

# The deployment guide's alerting table: condition -> severity and action.
GUIDE = {
    "OmniStackDown": ("critical", "Page on-call"),
    "OmniStackNotReady": ("critical", "Page on-call"),
    "OmniStackHighErrorRate": ("high", "Investigate immediately"),
    "OmniStackHighLatency": ("medium", "Investigate"),
    "OmniStackJobQueueBacklog": ("medium", "Scale workers"),
}


def alerting_rules() -> dict[str, dict[str, Any]]:
    rules = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                rules[rule["alert"]] = rule
    return rules


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, check=False, timeout=120)


def test_the_rule_files_pass_promtool_check(promtool: str) -> None:
    result = run(promtool, "check", "rules", *map(str, RULE_FILES))

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_FILES) == 2


@pytest.mark.parametrize("rule_test", RULE_TESTS, ids=lambda path: path.stem)
def test_the_alert_fires_on_its_synthetic_series_and_only_then(
    promtool: str, rule_test: Path
) -> None:
    # promtool resolves rule_files against the test file's directory.
    result = subprocess.run(
        [promtool, "test", "rules", rule_test.name],
        cwd=rule_test.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case["alert_rule_test"]:
                (firing if check["exp_alerts"] else quiet).add(check["alertname"])

    assert firing == quiet == set(alerting_rules())


def test_the_alerts_are_the_guides_with_its_severities_and_actions() -> None:
    rules = alerting_rules()

    assert {
        name: (rule["labels"]["severity"], rule["annotations"]["action"])
        for name, rule in rules.items()
    } == GUIDE


def test_the_rules_read_only_metrics_we_export_and_prometheus_up() -> None:
    exported = exported_series_names() | {"up"}
    for name, rule in alerting_rules().items():
        names = metric_names(rule["expr"])
        assert names, name
        assert names <= exported, (name, names - exported)
