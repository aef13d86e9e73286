"""Who may use the console: link sessions, signed-in admins, CSRF, and the page route class.

Two ways in. ``omnistack console-link`` prints a short-lived link signed with ``SECRET_KEY``;
opening it shows one button whose POST spends the link (once) and sets a session cookie. In a
service with the auth module, a signed-in user holding ``CONSOLE_ROLE`` (or
``CONSOLE_PERMISSION``) is let in by the same dependencies the API uses. Everyone else is sent
to the login page, and a signed-in user without the role gets 403.

Every state-changing form carries a CSRF token tied to the session; the cookie is also
``SameSite=Strict``, so a cross-site form never carries it in the first place.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from omnistack_core.console import signing
from omnistack_core.console.state import ConsoleState
from omnistack_core.errors import ProblemError
from omnistack_core.installation import Installation

SESSION_COOKIE = "omnistack_console"
PREFIX = "/console"
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


@dataclass(frozen=True, slots=True)
class Operator:
    """The person using the console.

    Attributes:
        name: Who: the name given to ``console-link``, or the signed-in user's id.
        via: ``link`` (a console session) or ``auth`` (the auth module's sign-in).
        csrf: The token every state-changing form of this session carries.
    """

    name: str
    via: Literal["link", "auth"]
    csrf: str


class LoginRequiredError(Exception):
    """No console session and no admin sign-in: go to the login page."""


class ForbiddenError(Exception):
    """Signed in, but without the console's role or permission."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadFormError(Exception):
    """A state-changing request without a valid CSRF token."""


class SectionMissingError(Exception):
    """A section's pages exist (its extra is installed) but its module is not in this app."""

    def __init__(self, section: str) -> None:
        super().__init__(section)
        self.section = section


def section_router(name: str) -> APIRouter:
    """The router of module ``name``'s section: under ``/console/<name>``, out of the schema.

    Its pages answer 404 unless the app installs that module. The check asks for the operator
    first, so strangers learn nothing of which modules are there.
    """

    async def installed(
        request: Request,
        operator: Annotated[Operator, Depends(current_operator)],  # noqa: ARG001
    ) -> None:
        if not ConsoleState.of(request.app).installed(request.app, name):
            raise SectionMissingError(name)

    return APIRouter(
        prefix=f"{PREFIX}/{name}",
        route_class=ConsoleRoute,
        include_in_schema=False,
        dependencies=[Depends(installed)],
    )


class ConsoleRoute(APIRoute):
    """Renders the console's access failures as pages: a redirect, a 403, a refused form."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, wrapped so that access failures become pages, not JSON."""
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequiredError:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                response = RedirectResponse(
                    f"{PREFIX}/login?next={quote(target, safe='')}", status_code=303
                )
            except ForbiddenError as exc:
                state = ConsoleState.of(request.app)
                response = state.render(
                    request, "denied.html", status_code=403, reason=exc.reason, title="Forbidden"
                )
            except SectionMissingError as exc:
                state = ConsoleState.of(request.app)
                response = state.render(
                    request,
                    "denied.html",
                    status_code=404,
                    title="Not here",
                    reason=f"This service does not install the {exc.section} module.",
                )
            except BadFormError:
                state = ConsoleState.of(request.app)
                response = state.render(
                    request,
                    "denied.html",
                    status_code=403,
                    title="Refused",
                    reason="The form's CSRF token is missing or wrong: reload the page and "
                    "try again.",
                )
            _harden(response)
            return response

        return guarded


def _harden(response: Response) -> None:
    # Pages show operational data: never cached, never framed, and no referrer that could
    # carry a link's token to another site.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; "
        "base-uri 'none'",
    )


def cookie_is_secure(request: Request, environment: str) -> bool:
    """Whether the session cookie gets ``Secure``.

    Always, except on plain ``http://`` to the machine itself in development and test, so
    ``omnistack dev`` works without TLS. A deployed service behind a TLS-terminating proxy may
    see ``http`` here: it gets ``Secure`` anyway, since its host is not local.
    """
    local = request.url.scheme == "http" and request.url.hostname in _LOCAL_HOSTS
    return not (local and environment in ("development", "test"))


def start_session(request: Request, response: Response, operator: str) -> None:
    """Set the cookie of a new console session for ``operator``."""
    state = ConsoleState.of(request.app)
    seconds = state.settings.console_session_minutes * 60
    token = signing.sign(
        state.secret_key,
        "console-session",
        {"op": operator, "csrf": secrets.token_urlsafe(24)},
        seconds=seconds,
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=seconds,
        path=PREFIX,
        httponly=True,
        secure=cookie_is_secure(request, state.settings.environment),
        samesite="strict",
    )


def end_session(request: Request, response: Response) -> None:
    """Remove the console session cookie."""
    state = ConsoleState.of(request.app)
    response.delete_cookie(
        SESSION_COOKIE,
        path=PREFIX,
        httponly=True,
        secure=cookie_is_secure(request, state.settings.environment),
        samesite="strict",
    )


async def current_operator(request: Request) -> Operator:
    """FastAPI dependency: the console's operator.

    Raises:
        LoginRequiredError: Nobody is signed in to the console.
        ForbiddenError: A signed-in user lacks the console's role or permission.
    """
    state = ConsoleState.of(request.app)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        try:
            payload = signing.verify(state.secret_key, "console-session", cookie)
        except signing.BadSignatureError:
            pass
        else:
            return Operator(str(payload["op"]), "link", str(payload["csrf"]))
    if Installation.of(request.app).installed("auth"):
        return await _signed_in_admin(request, state)
    raise LoginRequiredError


async def _signed_in_admin(request: Request, state: ConsoleState) -> Operator:
    # Imported only in services that run the auth module, which brings its extra.
    from omnistack_core.auth import (  # noqa: PLC0415
        optional_principal,
        require_permissions,
        require_roles,
    )

    try:
        principal = await optional_principal(request)
    except ProblemError as exc:
        if exc.status_code == 401:
            raise LoginRequiredError from None
        raise
    if principal is None:
        raise LoginRequiredError
    settings = state.settings
    check = (
        require_permissions(settings.console_permission)
        if settings.console_permission
        else require_roles(settings.console_role)
    )
    try:
        await check(principal)
    except ProblemError as exc:
        raise ForbiddenError(str(exc.detail)) from None
    digest = hmac.new(
        state.secret_key.encode(), f"console-csrf:{principal.id}".encode(), hashlib.sha256
    ).hexdigest()
    return Operator(principal.id, "auth", digest)


async def form_of(request: Request, operator: Operator) -> dict[str, str]:
    """The fields of a posted form, once its CSRF token is checked.

    Raises:
        BadFormError: The form has no CSRF token, or not this session's.
    """
    body = (await request.body()).decode("utf-8", errors="replace")
    fields = {key: values[-1] for key, values in parse_qs(body).items()}
    token = fields.get("csrf_token", "")
    if not token or not hmac.compare_digest(token, operator.csrf):
        raise BadFormError
    return fields


async def spend_link(state: ConsoleState, token: str) -> str | None:
    """The operator a login link names, once: None when it is bad, expired or already used."""
    try:
        payload = signing.verify(state.secret_key, "console-link", token)
    except signing.BadSignatureError:
        return None
    nonce = str(payload.get("nonce", ""))
    if not nonce or not await state.spend_nonce(nonce, until=float(payload["exp"])):
        return None
    return str(payload.get("op", "operator"))


def mint_link(secret_key: str, operator: str, *, minutes: int) -> str:
    """The token of a console login link for ``operator`` (what ``console-link`` prints)."""
    return signing.sign(
        secret_key,
        "console-link",
        {"op": operator, "nonce": secrets.token_urlsafe(16), "iat": int(time.time())},
        seconds=minutes * 60,
    )
