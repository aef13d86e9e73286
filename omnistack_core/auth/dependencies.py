"""FastAPI dependencies: who is calling, and may they?"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from weakref import WeakKeyDictionary

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from omnistack_core.auth.errors import AuthUnavailableError, InvalidTokenError
from omnistack_core.auth.module import AuthModule
from omnistack_core.auth.principal import Principal
from omnistack_core.auth.settings import AuthSettings
from omnistack_core.auth.token_cache import VerifiedTokenCache
from omnistack_core.auth.tokens import TokenVerifier
from omnistack_core.errors import ProblemError
from omnistack_core.installation import Installation
from omnistack_core.openapi import declare_problems

logger = logging.getLogger("omnistack.auth")

_INVALID_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
_NO_TOKEN = {"WWW-Authenticate": "Bearer"}
# Where a request keeps its verified caller, so a rate limit keyed by user and the route's
# own auth dependency verify its token once.
_CACHED = "omnistack_principal"
# One cache per verifier, that is per running app; built on first use from the app's settings.
_token_caches: WeakKeyDictionary[TokenVerifier, VerifiedTokenCache] = WeakKeyDictionary()


async def optional_principal(request: Request) -> Principal | None:
    """The caller, or None when the request carries no token.

    Raises:
        ProblemError: 401 when a token is present but invalid; 503 when the issuer's keys
            cannot be had.
        ModuleNotRunningError: The app does not run the auth module.
    """
    # The dict behind request.state, read directly: a missing attribute of request.state
    # costs an AttributeError, and most requests ask before anything is stored.
    state: dict[str, Any] = request.scope.setdefault("state", {})
    if _CACHED in state:
        cached: Principal | None = state[_CACHED]
        return cached
    authenticator = AuthModule.of(request.app)
    token = authenticator.token_from(request)
    if token is None:
        state[_CACHED] = None
        return None
    try:
        principal = await _verified(request, authenticator.verifier, token)
    except InvalidTokenError as exc:
        # Why, for whoever debugs it; never the token, and never to the client.
        logger.debug("Refused a token: %s", exc)
        raise ProblemError(401, "The access token is not valid.", headers=_INVALID_TOKEN) from None
    except AuthUnavailableError as exc:
        logger.warning("Cannot verify tokens: %s", exc)
        raise ProblemError(
            503, "Sign-in cannot be checked right now.", headers={"Retry-After": "30"}
        ) from None
    if authenticator.users is not None:
        await authenticator.users.seen(principal)
    state[_CACHED] = principal
    return principal


async def _verified(request: Request, verifier: TokenVerifier, token: str) -> Principal:
    """The principal of ``token``: remembered from an earlier request, else verified now."""
    cache = _token_caches.get(verifier)
    if cache is None:
        cache = _token_caches[verifier] = _token_cache_for(request)
    principal = cache.get(token, verifier.keys_version())
    if principal is None:
        principal = await verifier.verify(token)
        # Read once verify has returned: the verifiers take a key from the JWKS and check the
        # signature without awaiting in between, so this is the version of the key used.
        cache.remember(token, principal, verifier.keys_version())
    return principal


def _token_cache_for(request: Request) -> VerifiedTokenCache:
    settings = Installation.of(request.app).settings
    if not isinstance(settings, AuthSettings):  # pragma: no cover - the module composes them
        return VerifiedTokenCache(max_entries=0)
    return VerifiedTokenCache(
        max_entries=settings.auth_token_cache_size, ttl=settings.auth_token_cache_seconds
    )


async def signed_in_subject(request: Request) -> str | None:
    """The id of the request's verified caller, or None for an absent or invalid token.

    What the auth module tells rate limits (:class:`~omnistack_core.rate_limit.RateLimit`),
    which key anonymous callers and callers with a bad token by address; the route's own
    dependency still answers those with 401 (or 503 when keys cannot be had).
    """
    try:
        principal = await optional_principal(request)
    except ProblemError:
        return None
    return None if principal is None else principal.id


async def current_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
    _bearer: Bearer,
) -> Principal:
    """The caller; 401 when the request carries no token."""
    if principal is None:
        raise ProblemError(401, "Authentication required.", headers=_NO_TOKEN)
    return principal


async def _optional_user(
    principal: Annotated[Principal | None, Depends(optional_principal)],
    _bearer: Bearer,
) -> Principal | None:
    """What :data:`OptionalUser` gives: the caller, or None for anonymous requests."""
    return principal


bearer_scheme = HTTPBearer(
    scheme_name="bearerAuth",
    bearerFormat="JWT",
    description="An access token from the service's identity provider.",
    auto_error=False,
)
"""The bearer scheme in the OpenAPI document. It reads nothing the routes use: the auth
module reads the token (from the session cookie too), and answers its absence with our
problem+json 401, not FastAPI's."""

Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]

# What routes using them may answer, for the OpenAPI document.
declare_problems(401, 503, sign_in="required")(current_principal)
declare_problems(401, 503, sign_in="optional")(_optional_user)

CurrentUser = Annotated[Principal, Depends(current_principal)]
"""The authenticated caller: ``async def handler(user: CurrentUser)``; 401 without one."""

OptionalUser = Annotated[Principal | None, Depends(_optional_user)]
"""The caller, or None for anonymous requests; an invalid token is still a 401."""


def require_roles(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that admits callers holding at least one of ``roles`` (else 403).

    Use as ``Depends(require_roles("org:admin"))``, in a route's ``dependencies`` or as a
    parameter's default; it returns the principal.
    """
    wanted = frozenset(roles)

    @declare_problems(403)
    async def has_role(principal: CurrentUser) -> Principal:
        if not wanted & principal.roles:
            raise ProblemError(403, "This needs one of the roles: " + ", ".join(sorted(wanted)))
        return principal

    return has_role


def require_permissions(*permissions: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that admits callers holding every one of ``permissions`` (else 403)."""
    wanted = frozenset(permissions)

    @declare_problems(403)
    async def has_permissions(principal: CurrentUser) -> Principal:
        missing = wanted - principal.permissions
        if missing:
            raise ProblemError(403, "Missing permissions: " + ", ".join(sorted(missing)))
        return principal

    return has_permissions
