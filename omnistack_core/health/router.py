"""The public health endpoints: liveness without I/O, readiness over every registered check."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from omnistack_core.bearer_token import presents_token
from omnistack_core.health.readiness import readiness_report
from omnistack_core.settings import Settings

router = APIRouter(prefix="/public", tags=["health"])

# Probes must always reach the process, never a cache in between.
_NO_STORE = {"Cache-Control": "no-store"}


@router.get("/health", summary="Liveness: the process answers")
async def liveness() -> JSONResponse:
    """Answer 200 without touching any dependency, so a slow database never restarts us."""
    return JSONResponse({"status": "ok"}, headers=_NO_STORE)


# Readiness answers 503 as a JSON report (what probes read), not as problem+json.
_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "Not ready: a critical check fails, or the process is stopping.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


@router.get("/health/ready", summary="Readiness: every dependency answers", responses=_NOT_READY)
async def readiness(request: Request) -> JSONResponse:
    """Run every registered check; 503 naming the failing ones when a critical one fails.

    Anyone gets each check's status; callers presenting ``Authorization: Bearer
    <METRICS_TOKEN>`` (and, in development, every caller) also get latencies and errors, which
    name hosts and databases. Also 503, at once and without running checks, once the process
    has been asked to stop.
    """
    report = await readiness_report(request.app)
    return JSONResponse(
        report.as_dict(detail=_is_operator(request)),
        status_code=200 if report.ready else 503,
        headers=_NO_STORE,
    )


def _is_operator(request: Request) -> bool:
    settings = getattr(request.app.state, "settings", None)
    if not isinstance(settings, Settings):
        return False
    if settings.metrics_token is not None:
        return presents_token(request, settings.metrics_token)
    return settings.is_development
