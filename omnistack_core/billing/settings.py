"""The billing module's settings: Stripe's keys, the plans sold, where Checkout returns.

Every rule is declared here, so a misconfigured billing setup fails at start-up with every
problem listed at once.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr, ValidationInfo, field_validator

from omnistack_core.billing.plans import Plan, plans_from_setting
from omnistack_core.module_settings import DEPLOYED, ModuleSettings, required
from omnistack_core.settings import require_https

DEFAULT_STRIPE_API_BASE = "https://api.stripe.com"


def _parse_plans(value: Any) -> Any:
    if isinstance(value, dict):
        return plans_from_setting(value)
    return value


class BillingSettings(ModuleSettings):
    """Settings of :class:`~omnistack_core.billing.BillingModule`.

    Validator names start with ``_billing_``: a service composes every module's settings
    class into one, where a validator named like another module's would replace it.
    """

    module = "billing"

    port: int = Field(default=8000, ge=1, le=65535)
    """The port the service listens on: in development, Checkout returns to
    ``http://localhost:<PORT>/`` unless ``BILLING_SUCCESS_URL`` says otherwise."""
    stripe_secret_key: SecretStr | None = None
    """Stripe's secret API key (``sk_…``) or a restricted key (``rk_…``); optional in
    development and test, where what needs Stripe answers 503 without it."""
    stripe_webhook_secret: SecretStr | None = None
    """The webhook endpoint's signing secret (``whsec_…``); during a rotation, the new and
    the old one separated by a comma."""
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

    _billing_secret_key_required = required(
        "stripe_secret_key",
        module="billing",
        environments=DEPLOYED,
        hint="a Stripe secret key (sk_…) or restricted key (rk_…)",
    )
    _billing_webhook_secret_required = required(
        "stripe_webhook_secret",
        module="billing",
        environments=DEPLOYED,
        hint="the webhook endpoint's signing secret (whsec_…)",
    )
    _billing_success_url_required = required(
        "billing_success_url",
        module="billing",
        environments=DEPLOYED,
        hint="the page Checkout returns to, e.g. https://app.example.com/billing/done",
    )

    @field_validator("stripe_secret_key")
    @classmethod
    def _billing_secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("sk_", "rk_")):
            raise ValueError("must be a Stripe secret key (sk_…) or restricted key (rk_…)")
        return value

    @field_validator("stripe_webhook_secret")
    @classmethod
    def _billing_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
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

    @field_validator("billing_success_url", "billing_cancel_url", "billing_portal_return_url")
    @classmethod
    def _billing_other_urls(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _absolute_url(value, info)


def _split_secrets(value: SecretStr) -> list[str]:
    return [part.strip() for part in value.get_secret_value().split(",") if part.strip()]


def _absolute_url(value: str, info: ValidationInfo) -> str:
    return require_https(value.strip(), info.data.get("environment"))
