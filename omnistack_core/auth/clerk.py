"""Clerk session tokens: RS256, keys from the instance's JWKS or its PEM public key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jwt.algorithms import get_default_algorithms

from omnistack_core.auth.errors import InvalidTokenError
from omnistack_core.auth.jwks_cache import JwksCache
from omnistack_core.auth.principal import ClerkPrincipal
from omnistack_core.auth.tokens import (
    TokenVerifier,
    string_claim,
    string_set,
    unverified_header,
    verified_claims,
)

CLERK_ALGORITHM = "RS256"
SESSION_COOKIE = "__session"
"""Where Clerk's frontend keeps the session token for same-site requests."""


def clerk_jwks_url(issuer: str) -> str:
    """Where a Clerk instance publishes its signing keys."""
    return f"{issuer.rstrip('/')}/.well-known/jwks.json"


class ClerkVerifier(TokenVerifier):
    """Verifies Clerk session tokens.

    Args:
        issuer: ``CLERK_ISSUER_URL``, the instance's Frontend API URL.
        jwks: The cache of the instance's JWKS; None when ``pem_key`` is given.
        pem_key: The instance's PEM public key, for verification without any fetch.
        authorized_parties: Origins accepted in ``azp``; any when empty.
        allow_pending: Accept tokens of sessions still pending (``sts: pending``).
        leeway: Seconds of clock skew tolerated.
    """

    provider = "clerk"

    def __init__(
        self,
        issuer: str,
        jwks: JwksCache | None,
        *,
        pem_key: str | None = None,
        authorized_parties: frozenset[str] = frozenset(),
        allow_pending: bool = False,
        leeway: float = 10.0,
    ) -> None:
        if jwks is None and pem_key is None:
            raise ValueError("a Clerk verifier needs a JWKS or a PEM public key")
        self.issuer = issuer.rstrip("/")
        self.jwks = jwks
        self._pem_key = (
            get_default_algorithms()[CLERK_ALGORITHM].prepare_key(pem_key) if pem_key else None
        )
        self.authorized_parties = authorized_parties
        self.allow_pending = allow_pending
        self.leeway = leeway

    async def verify(self, token: str) -> ClerkPrincipal:
        """Verify a Clerk session token."""
        header = unverified_header(token)
        if header.get("alg") != CLERK_ALGORITHM:
            raise InvalidTokenError(f"algorithm {header.get('alg')!r} is not accepted")
        key: Any
        if self._pem_key is not None:
            key = self._pem_key
        elif self.jwks is not None:
            key = (await self.jwks.key(header.get("kid"))).key
        else:  # pragma: no cover - __init__ requires one of them
            raise InvalidTokenError("no key to verify with")
        claims = verified_claims(
            token, key, CLERK_ALGORITHM, issuer=self.issuer, audience=None, leeway=self.leeway
        )
        party = string_claim(claims, "azp")
        if self.authorized_parties and party not in self.authorized_parties:
            raise InvalidTokenError(f"authorized party {party!r} is not accepted")
        if claims.get("sts") == "pending" and not self.allow_pending:
            raise InvalidTokenError("the session is pending")
        return principal_from_clerk(claims)


def principal_from_clerk(claims: Mapping[str, Any]) -> ClerkPrincipal:
    """The principal of verified Clerk claims, version 1 or 2."""
    organization = claims.get("o")
    if isinstance(organization, dict):  # version 2: nested and abbreviated
        org_id = string_claim(organization, "id")
        role = string_claim(organization, "rol")
        org_role = f"org:{role}" if role and not role.startswith("org:") else role
        org_slug = string_claim(organization, "slg")
        permissions = _v2_permissions(claims, organization)
    else:  # version 1
        org_id = string_claim(claims, "org_id")
        org_role = string_claim(claims, "org_role")
        org_slug = string_claim(claims, "org_slug")
        permissions = string_set(claims.get("org_permissions"))
    return ClerkPrincipal(
        id=claims["sub"],
        provider="clerk",
        email=string_claim(claims, "email"),
        session_id=string_claim(claims, "sid"),
        roles=frozenset({org_role}) if org_role else frozenset(),
        permissions=permissions,
        claims=claims,
        org_id=org_id,
        org_role=org_role,
        org_slug=org_slug,
        authorized_party=string_claim(claims, "azp"),
    )


def _v2_permissions(claims: Mapping[str, Any], organization: Mapping[str, Any]) -> frozenset[str]:
    # Version 2 packs permissions: ``fea`` lists features ("o:invoices,o:teams"), ``o.per``
    # the permission names ("manage,read"), and ``o.fpm`` one bitmask per feature ("3,2")
    # whose bit i grants the i-th permission name for that feature.
    features = _comma_list(claims.get("fea"))
    names = _comma_list(organization.get("per"))
    masks = _comma_list(organization.get("fpm"))
    permissions = set()
    for feature, mask in zip(features, masks, strict=False):
        scope, _, feature_name = feature.partition(":")
        if "o" not in scope or not mask.isdigit():
            continue
        bits = int(mask)
        permissions |= {
            f"org:{feature_name}:{name}" for index, name in enumerate(names) if bits >> index & 1
        }
    return frozenset(permissions)


def _comma_list(value: object) -> list[str]:
    return [item.strip() for item in value.split(",")] if isinstance(value, str) else []
