"""The overview: the service, its modules, readiness now and lately, the queue, 5xx count."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from omnistack_core import __version__
from omnistack_core.console.access import PREFIX, ConsoleRoute, Operator, current_operator
from omnistack_core.console.samples import take_sample
from omnistack_core.console.state import ConsoleState
from omnistack_core.installation import Installation

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


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
    previous = state.history[-1] if state.history else None
    report = await take_sample(request.app)
    sample = state.history[-1]
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
