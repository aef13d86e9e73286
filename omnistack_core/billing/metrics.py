"""Billing metrics on the shared Prometheus registry (when the observability extra is installed)."""

from __future__ import annotations

import importlib.util
from typing import Any


def _create() -> Any:
    if importlib.util.find_spec("prometheus_client") is None:
        return None
    from prometheus_client import Counter  # noqa: PLC0415 - optional extra

    from omnistack_core.observability.metrics import REGISTRY  # noqa: PLC0415 - same extra

    return Counter(
        "stripe_webhook_events_total",
        "Stripe webhook deliveries, by event type and outcome (processed, duplicate, failed, "
        "refused).",
        ["type", "outcome"],
        registry=REGISTRY,
    )


_events = _create()


def count_webhook_event(event_type: str, outcome: str) -> None:
    """Count one delivery; ``event_type`` is ``unverified`` for refused ones."""
    if _events is not None:
        _events.labels(event_type, outcome).inc()
