"""Supabase Auth tokens: asymmetric keys from the project's JWKS, or the legacy HS256 secret."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omnistack_core.auth.errors import InvalidTokenError
from omnistack_core.auth.jwks_cache import ASYMMETRIC_ALGORITHMS, JwksCache
from omnistack_core.auth.principal import SupabasePrincipal
from omnistack_core.auth.tokens import (
    TokenVerifier,
    string_claim,
    string_set,
    unverified_header,
    verified_claims,
)

# A project's anon and service_role API keys are HS256 JWTs too: never a user.
_API_KEY_ROLES = frozenset({"anon", "service_role"})


def supabase_issuer(project_url: str) -> str:
    """The ``iss`` of a project's user tokens."""
    return f"{project_url.rstrip('/')}/auth/v1"


def supabase_jwks_url(project_url: str) -> str:
    """Where a project publishes its signing keys."""
    return f"{supabase_issuer(project_url)}/.well-known/jwks.json"


class SupabaseVerifier(TokenVerifier):
    """Verifies tokens issued by a Supabase project's Auth server.

    ES256 and RS256 tokens are verified with the key of their ``kid`` from the project's JWKS;
    HS256 tokens only with the legacy JWT secret, and only when one is configured, so an
    HMAC algorithm never meets an asymmetric key.

    Args:
        project_url: ``https://<ref>.supabase.co``.
        jwks: The cache of the project's JWKS.
        audience: The ``aud`` user tokens carry.
        legacy_secret: The project's legacy JWT secret, while HS256 tokens are in use.
        leeway: Seconds of clock skew tolerated.
    """

    provider = "supabase"

    def __init__(
        self,
        project_url: str,
        jwks: JwksCache,
        *,
        audience: str = "authenticated",
        legacy_secret: str | None = None,
        leeway: float = 10.0,
    ) -> None:
        self.issuer = supabase_issuer(project_url)
        self.jwks = jwks
        self.audience = audience
        self._legacy_secret = legacy_secret
        self.leeway = leeway

    async def verify(self, token: str) -> SupabasePrincipal:
        """Verify a Supabase access token."""
        header = unverified_header(token)
        algorithm = header.get("alg")
        key: Any
        if algorithm == "HS256" and self._legacy_secret:
            key = self._legacy_secret
        elif algorithm in ASYMMETRIC_ALGORITHMS:
            signing_key = await self.jwks.key(header.get("kid"))
            if signing_key.algorithm != algorithm:
                raise InvalidTokenError(f"key {signing_key.kid!r} does not sign {algorithm}")
            key = signing_key.key
        else:
            raise InvalidTokenError(f"algorithm {algorithm!r} is not accepted")
        claims = verified_claims(
            token,
            key,
            str(algorithm),
            issuer=self.issuer,
            audience=self.audience,
            leeway=self.leeway,
        )
        if claims.get("role") in _API_KEY_ROLES:
            raise InvalidTokenError("a project API key is not a user token")
        return principal_from_supabase(claims)


def principal_from_supabase(claims: Mapping[str, Any]) -> SupabasePrincipal:
    """The principal of verified Supabase claims."""
    app_metadata = claims.get("app_metadata")
    app_metadata = app_metadata if isinstance(app_metadata, dict) else {}
    user_metadata = claims.get("user_metadata")
    user_metadata = user_metadata if isinstance(user_metadata, dict) else {}
    role = string_claim(claims, "role")
    roles = string_set(app_metadata.get("roles")) | string_set(app_metadata.get("role"))
    return SupabasePrincipal(
        id=claims["sub"],
        provider="supabase",
        email=string_claim(claims, "email"),
        session_id=string_claim(claims, "session_id"),
        roles=roles | ({role} if role else set()),
        permissions=string_set(app_metadata.get("permissions")),
        claims=claims,
        phone=string_claim(claims, "phone"),
        role=role,
        aal=string_claim(claims, "aal"),
        app_metadata=app_metadata,
        user_metadata=user_metadata,
    )
