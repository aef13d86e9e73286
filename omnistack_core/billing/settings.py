"""The billing module's settings.

``STRIPE_SECRET_KEY`` and ``STRIPE_WEBHOOK_SECRET`` are core settings (the deployment guide
names them); the module adds its rules for them and the rest of its variables here, so a
misconfigured billing setup fails at start-up with every problem listed at once.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr, ValidationInfo, field_validator

from omnistack_core.billing.plans import Plan, plans_from_setting
from omnistack_core.settings import Settings, require_https

DEFAULT_STRIPE_API_BASE = "https://api.stripe.com"
_LOCAL_ENVIRONMENTS = ("development", "test")


def _parse_plans(value: Any) -> Any:
    if isinstance(value, dict):
        return plans_from_setting(value)
    return value


class BillingSettings(Settings):
    """Settings of :class:`~omnistack_core.billing.BillingModule`.

    Validator names start with ``_billing_``: ``create_app`` composes the modules' settings
    classes into one, where a validator named like another module's would replace it.
    """

    stripe_api_base: str = DEFAULT_STRIPE_API_BASE
    """Stripe's API base URL; a proxy, or a local server in tests."""
    billing_plans: Annotated[dict[str, Plan], BeforeValidator(_parse_plans)] = Field(
        default_factory=dict
    )
    """Plans by name, as JSON: ``{"pro": "price_123", "team": {"price": "price_456",
    "trial_days": 14}}``. Plans given to ``BillingModule(plans=...)`` are added to these."""
    billing_success_url: str | None = None
    """Where Checkout sends the customer after paying; may contain
    ``{CHECKOUT_SESSION_ID}``. Required outside development and test."""
    billing_cancel_url: str | None = None
    """Where Checkout sends a customer who goes back; ``BILLING_SUCCESS_URL`` when unset."""
    billing_portal_return_url: str | None = None
    """Where the Customer Portal's "return" link leads; ``BILLING_SUCCESS_URL`` when unset."""
    stripe_webhook_tolerance: int = Field(default=300, ge=10, le=3600)
    """Seconds a webhook's signed timestamp may differ from now, either way."""
    billing_webhook_max_bytes: int = Field(default=524_288, ge=4096, le=10_485_760)
    """The largest webhook body accepted; larger ones get 413 unread."""
    stripe_timeout: float = Field(default=30.0, gt=0, le=120)
    """Seconds one Stripe API request may take."""
    stripe_max_network_retries: int = Field(default=2, ge=0, le=5)
    """Times the SDK retries a request that failed in transit or with a 409/429/5xx; each
    retry carries the same idempotency key, so it is never applied twice."""

    @property
    def webhook_secrets(self) -> list[str]:
        """The signing secrets in ``STRIPE_WEBHOOK_SECRET`` (comma-separated while rotating)."""
        if self.stripe_webhook_secret is None:
            return []
        return _split_secrets(self.stripe_webhook_secret)

    @property
    def local_url(self) -> str:
        """The service's own address in development, for the default redirect URLs."""
        return f"http://localhost:{self.port}/"

    @field_validator("stripe_secret_key")
    @classmethod
    def _billing_secret_key(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        environment = info.data.get("environment")
        if value is None:
            if environment in (*_LOCAL_ENVIRONMENTS, None):
                return None
            raise ValueError(
                f"required with the billing module when ENVIRONMENT={environment}: "
                "a Stripe secret key (sk_…) or restricted key (rk_…)"
            )
        if not value.get_secret_value().startswith(("sk_", "rk_")):
            raise ValueError("must be a Stripe secret key (sk_…) or restricted key (rk_…)")
        return value

    @field_validator("stripe_webhook_secret")
    @classmethod
    def _billing_webhook_secret(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        environment = info.data.get("environment")
        if value is None:
            if environment in (*_LOCAL_ENVIRONMENTS, None):
                return None
            raise ValueError(
                f"required with the billing module when ENVIRONMENT={environment}: the "
                "webhook endpoint's signing secret (whsec_…)"
            )
        secrets = _split_secrets(value)
        if not secrets or not all(s.startswith("whsec_") and len(s) > 10 for s in secrets):
            raise ValueError(
                "must be signing secrets (whsec_…), several separated by commas while rotating"
            )
        return value

    @field_validator("stripe_api_base")
    @classmethod
    def _billing_api_base(cls, value: str, info: ValidationInfo) -> str:
        return require_https(value.strip().rstrip("/"), info.data.get("environment"))

    @field_validator("billing_success_url")
    @classmethod
    def _billing_success_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        environment = info.data.get("environment")
        if value is None:
            if environment in (*_LOCAL_ENVIRONMENTS, None):
                return None
            raise ValueError(
                f"required with the billing module when ENVIRONMENT={environment}: the page "
                "Checkout returns to, e.g. https://app.example.com/billing/done"
            )
        return _absolute_url(value, info)

    @field_validator("billing_cancel_url", "billing_portal_return_url")
    @classmethod
    def _billing_other_urls(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _absolute_url(value, info)


def _split_secrets(value: SecretStr) -> list[str]:
    return [part.strip() for part in value.get_secret_value().split(",") if part.strip()]


def _absolute_url(value: str, info: ValidationInfo) -> str:
    return require_https(value.strip(), info.data.get("environment"))
