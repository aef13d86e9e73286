"""The login page: spend a console link, and sign out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from omnistack_core.console import audit
from omnistack_core.console.access import (
    PREFIX,
    ConsoleRoute,
    Operator,
    current_operator,
    end_session,
    form_of,
    spend_link,
    start_session,
)
from omnistack_core.console.state import ConsoleState
from omnistack_core.installation import Installation

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


def _safe_next(target: str | None) -> str:
    # Only a path inside the console: never an open redirect to another site.
    if target and target.startswith(PREFIX) and not target.startswith("//"):
        return target
    return PREFIX


@router.get("/login")
async def login_page(request: Request, token: str = "", next: str = "") -> Response:  # noqa: A002
    """A link's page: one button that spends it, so a link preview cannot."""
    state = ConsoleState.of(request.app)
    return state.render(
        request,
        "login.html",
        title="Sign in",
        token=token,
        next=_safe_next(next),
        auth=Installation.of(request.app).installed("auth"),
        role=state.settings.console_permission or state.settings.console_role,
        anonymous=True,
    )


@router.post("/login")
async def login(request: Request) -> Response:
    """Spend a link and start a console session."""
    state = ConsoleState.of(request.app)
    body = (await request.body()).decode("utf-8", errors="replace")
    from urllib.parse import parse_qs  # noqa: PLC0415 - only this handler parses forms by hand

    fields = {key: values[-1] for key, values in parse_qs(body).items()}
    operator = await spend_link(state, fields.get("token", ""))
    if operator is None:
        audit.record("anonymous", "login", "console link", "refused")
        return state.render(
            request,
            "login.html",
            status_code=403,
            title="Sign in",
            token="",
            next=PREFIX,
            auth=Installation.of(request.app).installed("auth"),
            role=state.settings.console_permission or state.settings.console_role,
            error="This link is invalid, expired or already used: ask for a new one with "
            "omnistack console-link.",
            anonymous=True,
        )
    audit.record(operator, "login", "console link", "ok")
    response = RedirectResponse(_safe_next(fields.get("next")), status_code=303)
    start_session(request, response, operator)
    return response


@router.post("/logout")
async def logout(
    request: Request, operator: Annotated[Operator, Depends(current_operator)]
) -> Response:
    """End the console session."""
    await form_of(request, operator)
    audit.record(operator.name, "logout", "console session", "ok")
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    end_session(request, response)
    return response
