"""The auth module's settings.

The provider and issuers are core settings (``AUTH_PROVIDER``, ``SUPABASE_PROJECT_URL``,
``CLERK_ISSUER_URL``); these are the rest.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from omnistack_core.settings import AuthProvider, Settings


class AuthSettings(Settings):
    """Settings of :class:`~omnistack_core.auth.AuthModule`."""

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

    @field_validator("auth_provider")
    @classmethod
    def _provider_required_outside_development(
        cls, value: AuthProvider | None, info: ValidationInfo
    ) -> AuthProvider | None:
        environment = info.data.get("environment")
        if value is not None or environment is None:
            return value
        if environment in ("development", "test"):
            return "dev"
        raise ValueError(
            f"required with the auth module when ENVIRONMENT={environment}: supabase or clerk"
        )

    @field_validator("clerk_authorized_parties", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [party.strip().rstrip("/") for party in value.split(",") if party.strip()]
        return value

    @field_validator("clerk_jwt_key")
    @classmethod
    def _pem_public_key(cls, value: str | None) -> str | None:
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
