"""The auth module's settings: who issues tokens, and how they are verified."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from omnistack_core.module_settings import (
    DEPLOYED,
    OUTSIDE_DEVELOPMENT,
    ModuleSettings,
    When,
    required,
)
from omnistack_core.settings import require_https

AuthProvider = Literal["supabase", "clerk", "dev"]


class AuthSettings(ModuleSettings):
    """Settings of :class:`~omnistack_core.auth.AuthModule`.

    Validator names start with ``_auth_``: a service composes every module's settings class
    into one, where validators must not share names.
    """

    module = "auth"

    auth_provider: AuthProvider | None = None
    """Who issues user tokens: supabase, clerk, or dev (local only, refused in production).
    Unset in development and test: dev."""
    supabase_project_url: str | None = None
    """The Supabase project, e.g. ``https://xxx.supabase.co``; required for supabase auth."""
    clerk_issuer_url: str | None = None
    """The Clerk issuer, e.g. ``https://xxx.clerk.accounts.dev``; required for clerk auth."""
    secret_key: SecretStr | None = None
    """The key development tokens are signed with (``AUTH_PROVIDER=dev``); in development a
    random one per process when unset, so ``omnistack auth dev-token`` needs it set."""
    supabase_jwt_secret: SecretStr | None = None
    """The legacy HS256 JWT secret of a Supabase project; set it only while tokens signed with
    it are still in circulation. Asymmetric keys come from the project's JWKS either way."""
    supabase_jwt_audience: str = "authenticated"
    """The ``aud`` Supabase user tokens carry."""
    clerk_jwt_key: str | None = None
    """Clerk's PEM public key (Dashboard, API keys): verify without fetching the JWKS."""
    clerk_authorized_parties: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Comma-separated origins allowed as a Clerk token's ``azp``; any when empty."""
    clerk_allow_pending_sessions: bool = False
    """Accept tokens of pending Clerk sessions (``sts: pending``, e.g. an unfinished
    organization choice)."""
    auth_leeway_seconds: float = Field(default=10.0, ge=0, le=300)
    """Clock skew tolerated on ``exp``, ``nbf`` and ``iat``."""
    auth_jwks_cache_seconds: float = Field(default=600.0, gt=0)
    """How long fetched signing keys are used before they are fetched again."""
    auth_jwks_cooldown_seconds: float = Field(default=30.0, ge=0)
    """Least time between two fetches triggered by unknown key ids or failures."""
    auth_jwks_max_stale_seconds: float = Field(default=21600.0, ge=0)
    """How long the last good keys keep serving while the JWKS cannot be fetched."""
    auth_http_timeout: float = Field(default=5.0, gt=0, le=60)
    """Seconds a JWKS fetch may take."""
    auth_user_sync_seconds: float = Field(default=300.0, ge=0)
    """Least time between two updates of a user's row in the ``users`` table."""
    auth_token_cache_seconds: float = Field(default=60.0, ge=0, le=3600)
    """How long the principal of a verified token is reused without checking its signature
    again; never past the token's ``exp``, and only while the issuer's keys are unchanged.
    0 turns the cache off."""
    auth_token_cache_size: int = Field(default=10_000, ge=0)
    """How many verified tokens are remembered (by their SHA-256 digest), the least recently
    used dropped first; 0 turns the cache off."""

    _auth_provider_required = required(
        "auth_provider",
        module="auth",
        environments=DEPLOYED,
        default="dev",
        hint="supabase or clerk",
    )
    _auth_supabase_url_required = required(
        "supabase_project_url", module="auth", when=[When("auth_provider", "supabase")]
    )
    _auth_clerk_issuer_required = required(
        "clerk_issuer_url", module="auth", when=[When("auth_provider", "clerk")]
    )
    _auth_dev_key_required = required(
        "secret_key",
        module="auth",
        environments=OUTSIDE_DEVELOPMENT,
        when=[When("auth_provider", "dev")],
        hint="the key development tokens are signed with (at least 32 characters)",
    )

    @field_validator("auth_provider")
    @classmethod
    def _auth_dev_not_in_production(
        cls, value: AuthProvider | None, info: ValidationInfo
    ) -> AuthProvider | None:
        if value == "dev" and info.data.get("environment") == "production":
            raise ValueError("dev tokens are refused in production: use supabase or clerk")
        return value

    @field_validator("supabase_project_url", "clerk_issuer_url")
    @classmethod
    def _auth_issuer_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        return require_https(value.strip().rstrip("/"), info.data.get("environment"))

    @field_validator("clerk_authorized_parties", mode="before")
    @classmethod
    def _auth_comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [party.strip().rstrip("/") for party in value.split(",") if party.strip()]
        return value

    @field_validator("clerk_jwt_key")
    @classmethod
    def _auth_pem_public_key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from jwt.algorithms import get_default_algorithms  # noqa: PLC0415 - only when set

        # Platforms often store a multi-line PEM with literal "\n" sequences.
        pem = value.replace("\\n", "\n").strip()
        try:
            get_default_algorithms()["RS256"].prepare_key(pem)
        except Exception:  # noqa: BLE001 - any parse failure means the same to the operator
            raise ValueError("must be a PEM public key (-----BEGIN PUBLIC KEY-----...)") from None
        return pem
