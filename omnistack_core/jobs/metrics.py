"""Job metrics on the shared Prometheus registry (when the observability extra is installed)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class JobMetrics:
    """The job metrics: counts by status, durations, and the queue's depth."""

    jobs: Any
    duration: Any
    queued: Any

    def finished(self, job: str, status: str, seconds: float) -> None:
        """Record an attempt that ended with ``status`` (success, failure, retry, timeout)."""
        self.jobs.labels(job, status).inc()
        self.duration.labels(job).observe(seconds)


def _create() -> JobMetrics | None:
    if importlib.util.find_spec("prometheus_client") is None:
        return None
    from prometheus_client import Counter, Gauge, Histogram  # noqa: PLC0415 - optional extra

    from omnistack_core.observability.metrics import REGISTRY  # noqa: PLC0415 - same extra

    return JobMetrics(
        jobs=Counter(
            "background_jobs_total",
            "Job attempts, by job and how they ended (success, failure, retry, timeout).",
            ["job", "status"],
            registry=REGISTRY,
        ),
        duration=Histogram(
            "background_job_duration_seconds",
            "Time job attempts took, by job.",
            ["job"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=REGISTRY,
        ),
        queued=Gauge(
            "background_jobs_queued",
            "Jobs waiting in the queue (the guide alerts above 1000).",
            multiprocess_mode="livemax",
            registry=REGISTRY,
        ),
    )


job_metrics = _create()
"""The metrics, or None without prometheus-client."""
