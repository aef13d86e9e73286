"""A local token issuer: a JWKS served over HTTP on 127.0.0.1, and tokens signed to order.

It stands in for Supabase Auth and for a Clerk instance in tests, ours and users' own: the
service under test fetches keys from it over real HTTP, exactly as it would from the issuer.

    with LocalIssuer() as issuer:
        settings = load_settings(
            auth_provider="supabase", supabase_project_url=issuer.url
        )
        token = issuer.supabase_token("user-1", email="ada@example.com")
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from omnistack_core.testing.local_server import LocalServer

SUPABASE_JWKS_PATH = "/auth/v1/.well-known/jwks.json"
CLERK_JWKS_PATH = "/.well-known/jwks.json"


@dataclass(frozen=True, slots=True)
class IssuerKey:
    """A key pair the issuer signs with.

    Attributes:
        kid: The key id published in the JWKS and put in tokens' headers.
        algorithm: ``RS256`` or ``ES256``.
        private_key: The signing half (a ``cryptography`` key).
    """

    kid: str
    algorithm: str
    private_key: Any = field(repr=False)

    @classmethod
    def generate(cls, algorithm: str = "RS256", kid: str | None = None) -> IssuerKey:
        """A fresh key pair for ``algorithm``."""
        private_key: Any
        if algorithm == "RS256":
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif algorithm == "ES256":
            private_key = ec.generate_private_key(ec.SECP256R1())
        else:
            raise ValueError(f"unsupported algorithm {algorithm!r}")
        return cls(kid or uuid.uuid4().hex[:16], algorithm, private_key)

    def jwk(self) -> dict[str, Any]:
        """The public half, as a JWK."""
        public = self.private_key.public_key()
        converter = RSAAlgorithm if self.algorithm == "RS256" else ECAlgorithm
        entry: dict[str, Any] = converter.to_jwk(public, as_dict=True)
        entry.update(kid=self.kid, alg=self.algorithm, use="sig")
        return entry


class LocalIssuer(LocalServer):
    """Serves a JWKS at ``url`` (Supabase's and Clerk's paths) and mints tokens.

    Args:
        algorithms: One key is generated for each; the first signs by default.
    """

    def __init__(self, algorithms: tuple[str, ...] = ("RS256", "ES256")) -> None:
        self.keys: list[IssuerKey] = [IssuerKey.generate(algorithm) for algorithm in algorithms]
        self.jwks_requests = 0
        self.status = 200
        self.delay = 0.0
        self._lock = threading.Lock()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        if handler.command != "GET" or handler.path not in (SUPABASE_JWKS_PATH, CLERK_JWKS_PATH):
            handler.send_error(404)
            return
        status, body = self._jwks_response()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _jwks_response(self) -> tuple[int, bytes]:
        with self._lock:
            self.jwks_requests += 1
            status, delay, keys = self.status, self.delay, list(self.keys)
        if delay:
            time.sleep(delay)
        if status != 200:
            return status, b'{"error": "unavailable"}'
        return 200, json.dumps({"keys": [key.jwk() for key in keys]}).encode()

    # Keys -----------------------------------------------------------------------------------

    def rotate(self, algorithm: str = "RS256") -> IssuerKey:
        """Publish a new key and make it the one that signs by default."""
        key = IssuerKey.generate(algorithm)
        with self._lock:
            self.keys.insert(0, key)
        return key

    def remove(self, kid: str) -> None:
        """Stop publishing the key ``kid``."""
        with self._lock:
            self.keys = [key for key in self.keys if key.kid != kid]

    def key(self, algorithm: str) -> IssuerKey:
        """The published key for ``algorithm``."""
        return next(key for key in self.keys if key.algorithm == algorithm)

    # Tokens ---------------------------------------------------------------------------------

    def sign(
        self,
        claims: Mapping[str, Any],
        *,
        key: IssuerKey | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        """Sign ``claims`` as they are, with ``key`` (the default key when None).

        ``headers`` are merged into the JWS header; ``{"kid": None}`` leaves the kid out.
        """
        key = key or self.keys[0]
        header = {"kid": key.kid, **(headers or {})}
        if header.get("kid") is None:
            header.pop("kid")
        return jwt.encode(dict(claims), key.private_key, algorithm=key.algorithm, headers=header)

    def supabase_claims(self, sub: str = "user-1", **claims: Any) -> dict[str, Any]:
        """Claims shaped like a Supabase Auth access token of this project."""
        now = int(time.time())
        base: dict[str, Any] = {
            "iss": f"{self.url}/auth/v1",
            "aud": "authenticated",
            "sub": sub,
            "iat": now,
            "exp": now + 3600,
            "email": f"{sub}@example.com",
            "phone": "",
            "role": "authenticated",
            "aal": "aal1",
            "amr": [{"method": "password", "timestamp": now}],
            "session_id": str(uuid.uuid4()),
            "is_anonymous": False,
            "app_metadata": {"provider": "email", "providers": ["email"]},
            "user_metadata": {"email_verified": True},
        }
        return {**base, **claims}

    def supabase_token(
        self, sub: str = "user-1", *, key: IssuerKey | None = None, **claims: Any
    ) -> str:
        """A signed Supabase-shaped token; ``claims`` override or add to the usual ones."""
        return self.sign(self.supabase_claims(sub, **claims), key=key)

    def clerk_claims(self, sub: str = "user_1", **claims: Any) -> dict[str, Any]:
        """Claims shaped like a Clerk session token (version 2) of this instance."""
        now = int(time.time())
        base: dict[str, Any] = {
            "iss": self.url,
            "sub": sub,
            "sid": f"sess_{uuid.uuid4().hex[:20]}",
            "azp": "http://localhost:3000",
            "iat": now,
            "nbf": now - 5,
            "exp": now + 60,
            "fva": [0, -1],
            "sts": "active",
            "v": 2,
        }
        return {**base, **claims}

    def clerk_token(
        self, sub: str = "user_1", *, key: IssuerKey | None = None, **claims: Any
    ) -> str:
        """A signed Clerk-shaped token; ``claims`` override or add to the usual ones."""
        return self.sign(self.clerk_claims(sub, **claims), key=key or self.key("RS256"))
