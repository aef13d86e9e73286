"""What every provider checks the same way: size, header, algorithm, signature, claims."""

from __future__ import annotations

import abc
import base64
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import jwt

from omnistack_core.auth.errors import InvalidTokenError
from omnistack_core.auth.principal import Principal

MAX_TOKEN_BYTES = 8 * 1024
"""Longer tokens are refused before any parsing: real ones are well under 4 KB."""

REQUIRED_CLAIMS = ("exp", "iat", "sub")
"""Claims a token must carry; PyJWT alone would accept a token that never expires."""

_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")
_HEADERS_KEPT = 64
_headers: dict[str, Mapping[str, Any]] = {}


class TokenVerifier(abc.ABC):
    """Turns a bearer token into a :class:`Principal`, or refuses it.

    One implementation per provider; each allow-lists its algorithms and keys.
    """

    provider: ClassVar[str]

    @abc.abstractmethod
    async def verify(self, token: str) -> Principal:
        """Verify ``token`` and return who it identifies.

        Raises:
            InvalidTokenError: The token cannot be trusted.
            AuthUnavailableError: The keys to verify it cannot be had right now.
        """

    def keys_version(self) -> int:
        """A number that changes whenever the keys this verifier trusts change.

        Principals of verified tokens are reused only while it stays the same
        (:class:`~omnistack_core.auth.token_cache.VerifiedTokenCache`). Verifiers that fetch
        an issuer's JWKS keep its cache as ``jwks`` (Supabase, Clerk) and report its version;
        verifiers with fixed keys (a PEM key, a secret) report 0.
        """
        version = getattr(getattr(self, "jwks", None), "version", 0)
        return version if isinstance(version, int) else 0


def unverified_header(token: str) -> Mapping[str, Any]:
    """The token's header, read before anything is trusted, to pick the key.

    Only the header segment is decoded (strictly: URL-safe base64 alphabet, JSON object);
    PyJWT decodes the whole token again when it verifies it, and only an ``alg`` equal to the
    one read here can pass, so the two readings cannot disagree to an attacker's benefit.
    Every token signed with one key shares one header, so parsed headers are kept in a small
    table (emptied when full, so made-up headers cannot grow it).

    Raises:
        InvalidTokenError: The token is too large or its header is not a JSON object.
    """
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidTokenError(f"token longer than {MAX_TOKEN_BYTES} bytes")
    segment, dot, _ = token.partition(".")
    if not dot:
        raise InvalidTokenError("malformed token: not a JWS")
    header = _headers.get(segment)
    if header is None:
        header = _parsed_header(segment)
        if len(_headers) >= _HEADERS_KEPT:
            _headers.clear()
        _headers[segment] = header
    return header


def _parsed_header(segment: str) -> Mapping[str, Any]:
    try:
        standard = segment.translate(_URLSAFE_TO_STANDARD) + "=" * (-len(segment) % 4)
        header = json.loads(base64.b64decode(standard, validate=True))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidTokenError(f"malformed token header: {exc}") from None
    if not isinstance(header, dict):
        raise InvalidTokenError("malformed token header: not a JSON object")
    return MappingProxyType(header)


def verified_claims(
    token: str,
    key: Any,
    algorithm: str,
    *,
    issuer: str,
    audience: str | None,
    leeway: float,
) -> dict[str, Any]:
    """Check the signature with ``key`` and ``algorithm`` only, then the registered claims.

    ``exp``, ``iat`` and ``sub`` must be present; ``exp``, ``nbf`` and ``iat`` are checked
    with ``leeway``; ``iss`` must equal ``issuer``; ``aud`` must contain ``audience`` when one
    is given.

    Raises:
        InvalidTokenError: Any check fails.
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            issuer=issuer,
            audience=audience,
            leeway=leeway,
            options={"require": list(REQUIRED_CLAIMS), "verify_aud": audience is not None},
        )
    except jwt.PyJWTError as exc:
        raise InvalidTokenError(f"{type(exc).__name__}: {exc}") from None
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise InvalidTokenError("sub is not a non-empty string")
    return claims


def string_claim(claims: Mapping[str, Any], name: str) -> str | None:
    """``claims[name]`` when it is a non-empty string, else None."""
    value = claims.get(name)
    return value if isinstance(value, str) and value else None


def string_set(value: object) -> frozenset[str]:
    """A set of names from a claim holding a string, a list of strings, or nothing."""
    if isinstance(value, str):
        return frozenset({value}) if value else frozenset()
    if isinstance(value, list | tuple):
        return frozenset(item for item in value if isinstance(item, str) and item)
    return frozenset()
