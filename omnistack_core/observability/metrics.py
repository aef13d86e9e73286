"""Prometheus metrics: HTTP, database, and the registry other modules add theirs to.

Requires the ``observability`` extra (``prometheus-client``). Metrics are process-wide, as
Prometheus clients are: they are defined once here, at import, on :data:`REGISTRY`; a module
defines its own at its import the same way (``Counter(..., registry=REGISTRY)``).

With several worker processes (uvicorn ``--workers``, gunicorn), set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before the server starts: each process then
writes its values there and the exposition sums them (see :func:`exposition`).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from omnistack_core.bearer_token import presents_token
from omnistack_core.errors import ProblemError
from omnistack_core.observability.scrape import scrape_hooks
from omnistack_core.settings import Settings

__all__ = [
    "DB_QUERIES",
    "DB_QUERY_DURATION",
    "HTTP_IN_PROGRESS",
    "HTTP_REQUESTS",
    "HTTP_REQUEST_DURATION",
    "REGISTRY",
    "HttpMetrics",
    "exposition",
    "metrics_router",
]

logger = logging.getLogger("omnistack.metrics")

# From a cache hit to a slow report: API latencies sit between 5 ms and a few seconds.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
DB_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests served, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from request to the end of the response, by method and route template.",
    ["method", "route"],
    buckets=HTTP_BUCKETS,
    registry=REGISTRY,
)
HTTP_IN_PROGRESS = Gauge(
    "http_requests_in_progress",
    "HTTP requests being served.",
    ["method"],
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
DB_QUERIES = Counter(
    "db_queries_total",
    "SQL statements executed, by operation (select, insert, update, delete, other).",
    ["operation"],
    registry=REGISTRY,
)
DB_QUERY_DURATION = Histogram(
    "db_query_duration_seconds",
    "Time SQL statements took, by operation.",
    ["operation"],
    buckets=DB_BUCKETS,
    registry=REGISTRY,
)

# Any other method becomes OTHER: a client choosing the method must not choose our series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """The HTTP metrics as the middleware records them, with label children cached.

    ``Counter.labels()`` takes a lock and builds a key on every call; the label sets are
    bounded (methods, route templates, statuses), so their children are kept in dicts.
    """

    def __init__(self) -> None:
        # (method, route, status) -> its request counter and its route's duration histogram:
        # one lookup per finished request.
        self._finished: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._in_progress: dict[str, Any] = {}

    def started(self, method: str) -> str:
        """Count a request as in progress; returns the method label to pass to ``finished``."""
        label = method if method in _METHODS else "OTHER"
        gauge = self._in_progress.get(label)
        if gauge is None:
            gauge = self._in_progress[label] = HTTP_IN_PROGRESS.labels(label)
        gauge.inc()
        return label

    def finished(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record a finished request; ``method`` is what ``started`` returned."""
        self._in_progress[method].dec()
        children = self._finished.get((method, route, status))
        if children is None:
            children = self._finished[(method, route, status)] = (
                HTTP_REQUESTS.labels(method, route, str(status)),
                HTTP_REQUEST_DURATION.labels(method, route),
            )
        counter, histogram = children
        counter.inc()
        histogram.observe(seconds)


def exposition() -> bytes:
    """The metrics in Prometheus text format, summed over processes in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def metrics_router(settings: Settings) -> APIRouter:
    """``GET /public/metrics``, behind a bearer token when ``METRICS_TOKEN`` is set.

    Args:
        settings: Read for ``METRICS_TOKEN``.

    Returns:
        The router to mount under ``/api/v1``.
    """
    router = APIRouter(prefix="/public", tags=["observability"])
    token = settings.metrics_token

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if token is not None and not presents_token(request, token):
            raise ProblemError(
                401,
                "A valid metrics token is required.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        for hook in scrape_hooks(request.app):
            try:
                await hook(request.app)
            except Exception as exc:  # noqa: BLE001 - the other metrics are still worth serving
                logger.warning("A metrics scrape hook failed: %s: %s", type(exc).__name__, exc)
        return Response(
            exposition(), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"}
        )

    return router
