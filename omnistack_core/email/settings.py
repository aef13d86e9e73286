"""The email module's settings.

Every rule that ties variables together (a provider needs its host or key, a real provider
needs ``EMAIL_FROM``) is declared here, so a misconfigured provider fails at start-up with
every problem listed at once.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from omnistack_core.email.message import Address, parse_address
from omnistack_core.module_settings import DEPLOYED, LOCAL, ModuleSettings, When, required
from omnistack_core.rate_limit import RateText
from omnistack_core.settings import require_https

EmailProvider = Literal["resend", "smtp", "console", "memory"]

DEFAULT_RESEND_API_URL = "https://api.resend.com"
DEFAULT_TEMPLATES_DIR = Path("app/emails")
LOCAL_SENDER = "noreply@example.com"
_REAL_PROVIDERS = ("resend", "smtp")


class EmailSettings(ModuleSettings):
    """Settings of :class:`~omnistack_core.email.EmailModule`.

    Validator names start with ``_email_``: a service composes every module's settings class
    into one, where validators must not share names.
    """

    module = "email"

    service_name: str = Field(default="omnistack-api", min_length=1, max_length=100)
    """The service's name: the display name of the development sender."""
    email_provider: EmailProvider | None = None
    """How email is sent: resend, smtp, console (printed) or memory (kept, for tests).
    Unset in development and test: console."""
    resend_api_key: SecretStr | None = None
    """Resend API key; required when ``EMAIL_PROVIDER=resend``."""
    email_from: str | None = None
    """The default sender, ``Acme <hello@acme.com>``; required with resend and smtp. Its
    domain must be one the provider lets you send from (for Resend: a verified domain). With
    console and memory it defaults to ``<SERVICE_NAME> <noreply@example.com>``."""
    resend_api_url: str = DEFAULT_RESEND_API_URL
    """Resend's API base URL; tests point it at a local server."""
    resend_webhook_secret: SecretStr | None = None
    """The signing secret of the Resend webhook (``whsec_…``); the webhook endpoint
    ``POST /api/v1/email/webhook`` exists only when it is set."""
    smtp_host: str | None = None
    """The SMTP server; required with ``EMAIL_PROVIDER=smtp``."""
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    """The SMTP port; 465 with ``SMTP_TLS``, else 587."""
    smtp_username: str | None = None
    """The SMTP login, when the server requires one."""
    smtp_password: SecretStr | None = None
    """The SMTP password; set with ``SMTP_USERNAME``."""
    smtp_starttls: bool | None = None
    """Upgrade the connection with STARTTLS, and refuse a server that does not offer it;
    the default unless ``SMTP_TLS`` is set. ``false`` only for a local catcher (Mailpit)."""
    smtp_tls: bool = False
    """Connect with TLS from the start (implicit TLS, usually port 465)."""
    email_timeout: float = Field(default=15.0, gt=0, le=300)
    """Seconds one send may take (HTTP request or SMTP conversation)."""
    email_rate_limit_retries: int = Field(default=3, ge=0, le=10)
    """Times an immediate send waits and retries when the provider answers 429."""
    email_rate_limit_max_wait: float = Field(default=10.0, ge=0, le=120)
    """The longest an immediate send waits for one such retry; a longer ``Retry-After``
    fails the send (``send_email_later`` leaves the waiting to the job queue)."""
    email_templates_dir: Path | None = None
    """The app's own email templates, found before the library's; ``app/emails`` when that
    folder exists."""
    email_webhook_max_bytes: int = Field(default=262_144, ge=1024, le=10_485_760)
    """The largest webhook body accepted; larger ones get 413 unread."""
    email_rate_limit: RateText = "10/hour"
    """Emails a caller may trigger through routes guarded by ``RateLimit(setting=
    "email_rate_limit")`` (the generated welcome route), per user or address: ``10/hour``."""

    @property
    def templates_dir(self) -> Path | None:
        """``EMAIL_TEMPLATES_DIR``, else ``app/emails`` when it exists, else None."""
        if self.email_templates_dir is not None:
            return self.email_templates_dir
        return DEFAULT_TEMPLATES_DIR if DEFAULT_TEMPLATES_DIR.is_dir() else None

    @property
    def resolved_smtp_starttls(self) -> bool:
        """Whether SMTP upgrades with STARTTLS: ``SMTP_STARTTLS``, else unless ``SMTP_TLS``."""
        return (not self.smtp_tls) if self.smtp_starttls is None else self.smtp_starttls

    @property
    def resolved_smtp_port(self) -> int:
        """``SMTP_PORT``, else 465 with implicit TLS and 587 otherwise."""
        return self.smtp_port or (465 if self.smtp_tls else 587)

    _email_provider_required = required(
        "email_provider",
        module="email",
        environments=DEPLOYED,
        default="console",
        hint="resend or smtp",
    )
    _email_resend_key_required = required(
        "resend_api_key", module="email", when=[When("email_provider", "resend")]
    )
    _email_from_required = required(
        "email_from",
        module="email",
        when=[When("email_provider", *_REAL_PROVIDERS)],
        hint="the default sender, e.g. Acme <hello@acme.com>",
    )
    _email_smtp_host_required = required(
        "smtp_host", module="email", when=[When("email_provider", "smtp")]
    )

    @field_validator("email_provider")
    @classmethod
    def _email_memory_only_locally(
        cls, value: EmailProvider | None, info: ValidationInfo
    ) -> EmailProvider | None:
        environment = info.data.get("environment")
        if value == "memory" and environment not in (*LOCAL, None):
            raise ValueError(
                "memory keeps emails in the process and sends none: only in development and test"
            )
        return value

    @field_validator("email_from")
    @classmethod
    def _email_sender(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            if info.data.get("email_provider") in _REAL_PROVIDERS:
                return None  # required, and reported as such
            # Nothing leaves the process with console or memory: any sender will do.
            return str(Address(LOCAL_SENDER, str(info.data.get("service_name") or "")))
        try:
            return str(parse_address(value))
        except ValueError as exc:
            raise ValueError(f"must be an address like Acme <hello@acme.com>: {exc}") from None

    @field_validator("resend_api_url")
    @classmethod
    def _email_api_url(cls, value: str, info: ValidationInfo) -> str:
        return require_https(value.strip().rstrip("/"), info.data.get("environment"))

    @field_validator("resend_webhook_secret")
    @classmethod
    def _email_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                webhook_secret_bytes(value.get_secret_value())
            except ValueError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("smtp_host", mode="before")
    @classmethod
    def _email_smtp_host(cls, value: object) -> object:
        return value.strip() or None if isinstance(value, str) else value

    @field_validator("smtp_password")
    @classmethod
    def _email_smtp_credentials(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        username = info.data.get("smtp_username")
        if (value is None) != (username is None) and "smtp_username" in info.data:
            raise ValueError("SMTP_USERNAME and SMTP_PASSWORD go together: set both or neither")
        return value

    @field_validator("smtp_tls")
    @classmethod
    def _email_smtp_tls_mode(cls, value: bool, info: ValidationInfo) -> bool:  # noqa: FBT001 - pydantic calls it so
        starttls = info.data.get("smtp_starttls")
        if value and starttls:
            raise ValueError(
                "SMTP_TLS (implicit TLS, port 465) and SMTP_STARTTLS (port 587) exclude each "
                "other: set one"
            )
        encrypted = value or starttls is None or starttls
        environment = info.data.get("environment")
        if not encrypted and info.data.get("smtp_username") and environment not in (*LOCAL, None):
            raise ValueError(
                "with SMTP_STARTTLS=false and no SMTP_TLS the SMTP password would cross the "
                "network in clear text: enable one of them"
            )
        return value

    @field_validator("email_templates_dir")
    @classmethod
    def _email_templates_dir(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError("must be an existing directory")
        return value


def webhook_secret_bytes(secret: str) -> bytes:
    """The key of a Svix-style signing secret: ``whsec_`` then base64.

    Raises:
        ValueError: The secret is not of that form (the message never contains it).
    """
    encoded = secret.strip().removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "must be the webhook's signing secret: whsec_ followed by base64"
        ) from None
    if len(key) < 16:
        raise ValueError("must be the webhook's signing secret: whsec_ followed by base64")
    return key
