"""The public health endpoints: liveness without I/O, readiness over every registered check."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from omnistack_core.health.checks import (
    CheckResult,
    ReadinessCache,
    registered_checks,
)
from omnistack_core.health.draining import is_draining
from omnistack_core.settings import Settings, secret_values

router = APIRouter(prefix="/public", tags=["health"])

# Probes must always reach the process, never a cache in between.
_NO_STORE = {"Cache-Control": "no-store"}


@router.get("/health", summary="Liveness: the process answers")
async def liveness() -> JSONResponse:
    """Answer 200 without touching any dependency, so a slow database never restarts us."""
    return JSONResponse({"status": "ok"}, headers=_NO_STORE)


@router.get("/health/ready", summary="Readiness: every dependency answers")
async def readiness(request: Request) -> JSONResponse:
    """Run every registered check; 503 with per-check detail when a critical one fails.

    Also 503, at once and without running checks, once the process has been asked to stop.
    """
    app = request.app
    if is_draining(app):
        return JSONResponse({"status": "draining", "checks": {}}, 503, headers=_NO_STORE)
    settings: Settings = app.state.settings
    cache: ReadinessCache = app.state.readiness_cache
    results = await cache.results(
        app, registered_checks(app).values(), secrets=secret_values(settings)
    )
    status = _overall(results)
    body: dict[str, Any] = {
        "status": status,
        "checks": {
            result.name: {
                key: value
                for key, value in (
                    ("status", result.status),
                    ("latency_ms", result.latency_ms),
                    ("error", result.error),
                )
                if value is not None
            }
            for result in results
        },
    }
    return JSONResponse(body, status_code=503 if status == "failed" else 200, headers=_NO_STORE)


def _overall(results: list[CheckResult]) -> str:
    statuses = {result.status for result in results}
    if "failed" in statuses:
        return "failed"
    return "degraded" if "degraded" in statuses else "ok"
