"""The PromQL reading the monitoring tests rely on finds names, and only names."""

from __future__ import annotations

import pytest

from tests.monitoring.promql import exported_families, metric_names, selectors


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up == 0", {"up"}),
        (
            'sum by (job, le) (rate(http_request_duration_seconds_bucket{route!~"/a|/b"}[5m]))',
            {"http_request_duration_seconds_bucket"},
        ),
        (
            (
                'sum without (instance) (rate(a_total{job=~"$job"}[$__rate_interval]))'
                " / on (job) group_left (route) b offset 1h > 0.01"
            ),
            {"a_total", "b"},
        ),
        ('histogram_quantile(0.95, x_bucket{le="1e3", q="sum(y)"}) > bool 1e3', {"x_bucket"}),
        ("max(gauge:recorded) and ignoring (kind) absent(other)", {"gauge:recorded", "other"}),
    ],
)
def test_metric_names_are_the_identifiers_that_are_not_functions_labels_or_keywords(
    expr: str, names: set[str]
) -> None:
    assert metric_names(expr) == names


def test_selectors_pair_each_metric_with_its_own_matchers() -> None:
    expr = 'sum(rate(a_total{job=~"$job", route="/x{y}"}[5m])) / sum(rate(b_total[5m]))'

    assert selectors(expr) == [("a_total", '{job=~"$job", route="/x{y}"}'), ("b_total", "")]


def test_the_registry_holds_the_metrics_the_architecture_names() -> None:
    families = {family.name: family.type for family in exported_families()}

    assert families["http_requests"] == "counter"
    assert families["http_request_duration_seconds"] == "histogram"
    assert families["background_jobs_queued"] == "gauge"
    assert not [name for name in families if name.startswith(("process_", "python_"))]
