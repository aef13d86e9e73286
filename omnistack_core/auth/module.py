"""``AuthModule``: plugs token verification into ``create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import cast

import httpx
from fastapi import FastAPI
from sqlalchemy import MetaData
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from omnistack_core.auth.clerk import SESSION_COOKIE, ClerkVerifier, clerk_jwks_url
from omnistack_core.auth.dev import DevVerifier
from omnistack_core.auth.jwks_cache import JwksCache
from omnistack_core.auth.settings import AuthSettings
from omnistack_core.auth.supabase import SupabaseVerifier, supabase_jwks_url
from omnistack_core.auth.tokens import TokenVerifier
from omnistack_core.auth.users import UserMirror, auth_metadata
from omnistack_core.health import HealthCheck
from omnistack_core.module import Module
from omnistack_core.settings import Settings


@dataclass(frozen=True, slots=True)
class Authenticator:
    """What the auth dependencies use, kept on ``app.state.auth`` while the app runs.

    Attributes:
        verifier: Verifies tokens of the configured provider.
        users: Mirrors principals into the ``users`` table.
        session_cookie: Also read the token from this cookie (Clerk's ``__session``).
    """

    verifier: TokenVerifier
    users: UserMirror
    session_cookie: str | None = None

    def token_from(self, connection: HTTPConnection) -> str | None:
        """The bearer token of a request: ``Authorization: Bearer`` first, then the cookie."""
        scheme, _, token = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        if self.session_cookie is not None:
            return connection.cookies.get(self.session_cookie) or None
        return None


class AuthModule(Module):
    """Verifies Supabase, Clerk or development tokens, as ``AUTH_PROVIDER`` says.

    Install it with ``create_app(modules=[AuthModule()])``; protect routes with
    :data:`~omnistack_core.auth.CurrentUser` and friends. Without ``AUTH_PROVIDER``, development
    and test use ``dev`` tokens (``omnistack auth dev-token``); elsewhere it is required.
    """

    name = "auth"
    settings_class = AuthSettings

    def metadata(self) -> Sequence[MetaData]:
        """The ``users`` table."""
        return [auth_metadata]

    def health_checks(self, settings: Settings) -> Sequence[HealthCheck]:
        """That the issuer's JWKS answers; non-critical, since cached keys keep serving."""
        if cast("AuthSettings", settings).auth_provider == "dev":
            return []
        if settings.auth_provider == "clerk" and cast("AuthSettings", settings).clerk_jwt_key:
            return []
        return [HealthCheck("auth_jwks", _check_jwks, critical=False)]

    def lifespan(self, app: FastAPI, settings: Settings) -> AbstractAsyncContextManager[None]:
        """Open the HTTP client the JWKS is fetched with and build the verifier."""
        return _running(app, cast("AuthSettings", settings))


@asynccontextmanager
async def _running(app: FastAPI, settings: AuthSettings) -> AsyncIterator[None]:
    async with httpx.AsyncClient(
        timeout=settings.auth_http_timeout, headers={"User-Agent": "omnistack-core"}
    ) as client:
        verifier, cookie = _verifier(settings, client)
        app.state.auth = Authenticator(
            verifier, UserMirror(settings.auth_user_sync_seconds), cookie
        )
        yield


def _verifier(
    settings: AuthSettings, client: httpx.AsyncClient
) -> tuple[TokenVerifier, str | None]:
    def cache(url: str) -> JwksCache:
        return JwksCache(
            url,
            client,
            ttl=settings.auth_jwks_cache_seconds,
            cooldown=settings.auth_jwks_cooldown_seconds,
            max_stale=settings.auth_jwks_max_stale_seconds,
        )

    leeway = settings.auth_leeway_seconds
    if settings.auth_provider == "supabase" and settings.supabase_project_url:
        secret = settings.supabase_jwt_secret
        supabase = SupabaseVerifier(
            settings.supabase_project_url,
            cache(supabase_jwks_url(settings.supabase_project_url)),
            audience=settings.supabase_jwt_audience,
            legacy_secret=secret.get_secret_value() if secret else None,
            leeway=leeway,
        )
        return supabase, None
    if settings.auth_provider == "clerk" and settings.clerk_issuer_url:
        issuer = settings.clerk_issuer_url
        clerk = ClerkVerifier(
            issuer,
            None if settings.clerk_jwt_key else cache(clerk_jwks_url(issuer)),
            pem_key=settings.clerk_jwt_key,
            authorized_parties=frozenset(settings.clerk_authorized_parties),
            allow_pending=settings.clerk_allow_pending_sessions,
            leeway=leeway,
        )
        return clerk, SESSION_COOKIE
    dev = DevVerifier(
        settings.secret_key.get_secret_value(), environment=settings.environment, leeway=leeway
    )
    return dev, None


async def _check_jwks(app: Starlette) -> None:
    authenticator: Authenticator = app.state.auth
    jwks = getattr(authenticator.verifier, "jwks", None)
    if isinstance(jwks, JwksCache):
        await jwks.check()
