"""The service's settings: every module's, and the few of its own."""

from pathlib import Path

from omnistack_core import Settings
from omnistack_core.ai import AISettings
from omnistack_core.auth import AuthSettings
from omnistack_core.billing import BillingSettings
from omnistack_core.email import EmailSettings
from omnistack_core.jobs import JobsSettings

EMAILS = Path(__file__).parent / "emails"


class SaasSettings(
    Settings, AuthSettings, JobsSettings, EmailSettings, BillingSettings, AISettings
):
    """Read from the environment and ``.env``, like every OmniStack setting."""

    product_name: str = "Summarizer"
    """The product's name in emails."""
    usage_meter_event: str | None = None
    """The event name of the Stripe meter each AI call's tokens are reported to, for a
    usage-based price; unset, usage is not reported."""
    email_templates_dir: Path | None = EMAILS
    """The service's email templates (``subscriber_welcome``), searched before the library's."""
