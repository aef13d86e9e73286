"""Observability: JSON logs with request ids, an access log, Prometheus metrics, Sentry.

``create_app`` wires all of it; these are the pieces for apps that assemble their own.
Prometheus metrics live in :mod:`omnistack_core.observability.metrics` and need the
``observability`` extra; nothing here imports ``prometheus_client`` or ``sentry_sdk``.
"""

from omnistack_core.observability.logs import (
    ACCESS_LOGGER,
    JsonFormatter,
    RequestIdFilter,
    TextFormatter,
    configure_logging,
)
from omnistack_core.observability.middleware import (
    REQUEST_ID_HEADER,
    UNMATCHED_ROUTE,
    ObservabilityMiddleware,
)
from omnistack_core.observability.sentry import init_sentry
from omnistack_core.request_context import current_request_id

__all__ = [
    "ACCESS_LOGGER",
    "REQUEST_ID_HEADER",
    "UNMATCHED_ROUTE",
    "JsonFormatter",
    "ObservabilityMiddleware",
    "RequestIdFilter",
    "TextFormatter",
    "configure_logging",
    "current_request_id",
    "init_sentry",
]
