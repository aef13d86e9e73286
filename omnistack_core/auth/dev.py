"""Development tokens: HS256 signed with ``SECRET_KEY``, for local work and tests only."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import jwt

from omnistack_core.auth.errors import InvalidTokenError
from omnistack_core.auth.principal import Principal
from omnistack_core.auth.tokens import (
    TokenVerifier,
    string_claim,
    string_set,
    unverified_header,
    verified_claims,
)
from omnistack_core.errors import ConfigProblem, ConfigurationError

DEV_ISSUER = "omnistack-dev"
DEV_AUDIENCE = "omnistack-dev"
DEV_ALGORITHM = "HS256"


def mint_dev_token(
    secret_key: str,
    sub: str,
    *,
    email: str | None = None,
    roles: Iterable[str] = (),
    permissions: Iterable[str] = (),
    ttl: float = 3600.0,
    claims: dict[str, Any] | None = None,
) -> str:
    """A development token the dev provider accepts.

    Args:
        secret_key: The service's ``SECRET_KEY``.
        sub: The user id.
        email: An email address for the principal.
        roles: Roles for ``require_roles``.
        permissions: Permissions for ``require_permissions``.
        ttl: Seconds until it expires.
        claims: Further claims.

    Returns:
        The signed token.
    """
    now = int(time.time())
    payload: dict[str, Any] = {
        **(claims or {}),
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "sub": sub,
        "iat": now,
        "exp": now + int(ttl),
        "roles": sorted(roles),
        "permissions": sorted(permissions),
    }
    if email is not None:
        payload["email"] = email
    return jwt.encode(payload, secret_key, algorithm=DEV_ALGORITHM)


class DevVerifier(TokenVerifier):
    """Verifies development tokens; refuses to exist in production.

    Args:
        secret_key: The service's ``SECRET_KEY``.
        environment: ``ENVIRONMENT``; production is refused.
        leeway: Seconds of clock skew tolerated.

    Raises:
        ConfigurationError: ``environment`` is production.
    """

    provider = "dev"

    def __init__(self, secret_key: str, *, environment: str, leeway: float = 10.0) -> None:
        if environment == "production":
            raise ConfigurationError(
                [ConfigProblem("AUTH_PROVIDER", "dev tokens are refused in production")]
            )
        self._secret_key = secret_key
        self.leeway = leeway

    async def verify(self, token: str) -> Principal:
        """Verify a development token."""
        if unverified_header(token).get("alg") != DEV_ALGORITHM:
            raise InvalidTokenError("a development token is HS256")
        claims = verified_claims(
            token,
            self._secret_key,
            DEV_ALGORITHM,
            issuer=DEV_ISSUER,
            audience=DEV_AUDIENCE,
            leeway=self.leeway,
        )
        return Principal(
            id=claims["sub"],
            provider="dev",
            email=string_claim(claims, "email"),
            roles=string_set(claims.get("roles")),
            permissions=string_set(claims.get("permissions")),
            claims=claims,
        )
