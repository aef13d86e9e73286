"""The overview: the service, its modules, readiness now and lately, the queue, 5xx count."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from omnistack_core import __version__
from omnistack_core.console.access import PREFIX, ConsoleRoute, Operator, current_operator
from omnistack_core.console.state import ConsoleState, Sample
from omnistack_core.health.readiness import readiness_report
from omnistack_core.installation import Installation

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


def _errors_5xx() -> float | None:
    try:
        from omnistack_core.observability.metrics import HTTP_REQUESTS  # noqa: PLC0415
    except ImportError:  # no observability extra: no metrics to read
        return None
    total = 0.0
    for metric in HTTP_REQUESTS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("status", "").startswith("5"):
                total += sample.value
    return total


async def _jobs_summary(request: Request, state: ConsoleState) -> dict[str, Any] | None:
    if not state.installed(request.app, "jobs"):
        return None
    from omnistack_core.console.jobs_pages import queue_overview  # noqa: PLC0415

    return await queue_overview(request.app)


@router.get("")
@router.get("/")
async def overview(
    request: Request, operator: Annotated[Operator, Depends(current_operator)]
) -> Response:
    """The overview page."""
    state = ConsoleState.of(request.app)
    installation = Installation.of(request.app)
    report = await readiness_report(request.app)
    sample = Sample(
        time.time(),
        report.status,
        tuple(check.name for check in report.checks if check.status != "ok"),
        _errors_5xx(),
    )
    previous = state.history[-1] if state.history else None
    state.history.append(sample)
    modules = [
        (module.name, module.summary(installation.settings)) for module in installation.modules
    ]
    recent_5xx = (
        sample.errors_5xx - previous.errors_5xx
        if previous is not None
        and previous.errors_5xx is not None
        and sample.errors_5xx is not None
        else None
    )
    return state.render(
        request,
        "overview.html",
        title="Overview",
        operator=operator,
        version=__version__,
        app_version=request.app.version,
        modules=modules,
        report=report,
        history=list(reversed(state.history)),
        errors_5xx=sample.errors_5xx,
        recent_5xx=recent_5xx,
        since=previous.at if previous is not None else None,
        jobs=await _jobs_summary(request, state),
    )
