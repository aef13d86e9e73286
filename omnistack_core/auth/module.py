"""``AuthModule``: plugs token verification into ``create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from secrets import token_urlsafe
from typing import TYPE_CHECKING

from fastapi import FastAPI
from sqlalchemy import MetaData, Table
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from omnistack_core.auth.settings import AuthSettings
from omnistack_core.auth.tokens import TokenVerifier
from omnistack_core.auth.users import (
    DEFAULT_USERS_TABLE,
    UserMirror,
    new_users_table,
    users,
)
from omnistack_core.db import new_metadata
from omnistack_core.health import HealthCheck
from omnistack_core.installation import Installation, resource_of
from omnistack_core.migration_branch import MigrationBranch
from omnistack_core.module import Module
from omnistack_core.rate_limit import SUBJECT_RESOURCE, CallerSubject

if TYPE_CHECKING:
    import httpx

    from omnistack_core.auth.jwks_cache import JwksCache


@dataclass(frozen=True, slots=True)
class Authenticator:
    """What the auth dependencies use while the app runs: ``AuthModule.of(app)``.

    Attributes:
        verifier: Verifies tokens of the configured provider.
        users: Mirrors principals into the users table; None when recording is off.
        session_cookie: Also read the token from this cookie (Clerk's ``__session``).
    """

    verifier: TokenVerifier
    users: UserMirror | None
    session_cookie: str | None = None

    def token_from(self, connection: HTTPConnection) -> str | None:
        """The bearer token of a request: ``Authorization: Bearer`` first, then the cookie."""
        scheme, _, token = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        if self.session_cookie is not None:
            return connection.cookies.get(self.session_cookie) or None
        return None


class AuthModule(Module[AuthSettings]):
    """Verifies Supabase, Clerk or development tokens, as ``AUTH_PROVIDER`` says.

    Install it with ``create_app(modules=[AuthModule()])``; protect routes with
    :data:`~omnistack_core.auth.CurrentUser` and friends. Without ``AUTH_PROVIDER``, development
    and test use ``dev`` tokens (``omnistack auth dev-token``); elsewhere it is required.

    Args:
        users_table: The table each signed-in user is recorded in (``users``), so other tables
            can refer to users; another name when the app has a ``users`` table of its own,
            or None to record nobody.
    """

    name = "auth"
    settings_class = AuthSettings

    def __init__(self, *, users_table: str | None = DEFAULT_USERS_TABLE) -> None:
        self.users_table = users_table
        self._users: Table | None = None
        if users_table == DEFAULT_USERS_TABLE:
            self._users = users
        elif users_table is not None:
            self._users = new_users_table(users_table, new_metadata())

    @classmethod
    def of(cls, app: Starlette) -> Authenticator:
        """The running app's :class:`Authenticator`.

        Raises:
            ModuleNotRunningError: The app does not run the auth module.
        """
        return resource_of(app, cls.name, Authenticator)

    def metadata(self) -> Sequence[MetaData]:
        """The users table, unless recording is off."""
        return [] if self._users is None else [self._users.metadata]

    def migrations(self) -> MigrationBranch | None:
        """The ``omnistack_auth`` branch, creating the users table under its name."""
        if self._users is None:
            return None
        options = {"users_table": self._users.name}
        return MigrationBranch("omnistack_auth", "omnistack_core.auth:migrations", options)

    def health_checks(self, settings: AuthSettings) -> Sequence[HealthCheck]:
        """That the issuer's JWKS answers; non-critical, since cached keys keep serving."""
        if settings.auth_provider == "dev":
            return []
        if settings.auth_provider == "clerk" and settings.clerk_jwt_key:
            return []
        return [HealthCheck("auth_jwks", _check_jwks, critical=False)]

    def summary(self, settings: AuthSettings) -> str:
        """The provider and where its keys come from."""
        match settings.auth_provider:
            case "supabase":
                return f"Supabase tokens from {settings.supabase_project_url}"
            case "clerk":
                keys = "a PEM key" if settings.clerk_jwt_key else "its JWKS"
                return f"Clerk tokens from {settings.clerk_issuer_url}, verified with {keys}"
            case _:
                return "dev tokens (omnistack auth dev-token), signed with SECRET_KEY"

    def lifespan(self, app: FastAPI, settings: AuthSettings) -> AbstractAsyncContextManager[None]:
        """Open the HTTP client the JWKS is fetched with and build the verifier."""
        return self._running(app, settings)

    @asynccontextmanager
    async def _running(self, app: FastAPI, settings: AuthSettings) -> AsyncIterator[None]:
        # httpx loads when the app starts, not when it is built (OpenAPI export, the CLI).
        import httpx  # noqa: PLC0415

        # The dependencies reach the running module through this one: imported here, not above.
        from omnistack_core.auth.dependencies import signed_in_subject  # noqa: PLC0415

        installation = Installation.of(app)
        mirror = None
        if self._users is not None:
            mirror = UserMirror(
                self._users, installation.require_database(), settings.auth_user_sync_seconds
            )
        async with httpx.AsyncClient(
            timeout=settings.auth_http_timeout, headers={"User-Agent": "omnistack-core"}
        ) as client:
            verifier, cookie = _verifier(settings, client)
            installation.provide(self.name, Authenticator(verifier, mirror, cookie))
            installation.provide(SUBJECT_RESOURCE, CallerSubject(signed_in_subject))
            jwks = _jwks_of(verifier)
            if jwks is not None:
                # Fetched while the other modules start, not by the first probe or request.
                jwks.prefetch()
            try:
                yield
            finally:
                if jwks is not None:
                    jwks.stop()


def _verifier(
    settings: AuthSettings, client: httpx.AsyncClient
) -> tuple[TokenVerifier, str | None]:
    # Each provider's verifier is imported only when it is the one configured.
    from omnistack_core.auth.jwks_cache import JwksCache  # noqa: PLC0415

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
        from omnistack_core.auth.supabase import SupabaseVerifier, supabase_jwks_url  # noqa: PLC0415

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
        from omnistack_core.auth.clerk import (  # noqa: PLC0415
            SESSION_COOKIE,
            ClerkVerifier,
            clerk_jwks_url,
        )

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
    from omnistack_core.auth.dev import DevVerifier  # noqa: PLC0415

    # Unset only in development (a test or staging refuses it): a key for this process alone.
    key = settings.secret_key.get_secret_value() if settings.secret_key else token_urlsafe(48)
    dev = DevVerifier(key, environment=settings.environment, leeway=leeway)
    return dev, None


def _jwks_of(verifier: TokenVerifier) -> JwksCache | None:
    """The JWKS cache ``verifier`` takes its keys from; None for a fixed key."""
    from omnistack_core.auth.jwks_cache import JwksCache  # noqa: PLC0415 - loaded at start-up

    jwks = getattr(verifier, "jwks", None)
    return jwks if isinstance(jwks, JwksCache) else None


async def _check_jwks(app: Starlette) -> None:
    jwks = _jwks_of(AuthModule.of(app).verifier)
    if jwks is not None:
        await jwks.check()
