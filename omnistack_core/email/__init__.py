"""Email: messages, providers, templates, sending now or later, and delivery events.

A validated message model; providers for Resend, SMTP, the console and memory; Jinja2
templates; sending now or from a job; delivery events from Resend's webhooks.

Needs the ``email`` extra: ``pip install 'omnistack-core[email]'``; ``send_email_later`` also
needs the ``jobs`` extra. The Resend and SMTP providers live in
``omnistack_core.email.providers.resend`` and ``.smtp`` and load their libraries only when
used.
"""

import importlib.util

from omnistack_core.errors import MissingDependencyError

# Checked, not imported: the libraries load when they are first used, not on import.
if not all(
    importlib.util.find_spec(name) for name in ("resend", "jinja2", "aiosmtplib", "email_validator")
):
    raise MissingDependencyError("email", "email")

from omnistack_core.email.errors import (
    EmailDeliveryError,
    EmailError,
    EmailTemplateError,
    EmailTransientError,
    InvalidMessageError,
    WebhookVerificationError,
)
from omnistack_core.email.message import (
    MAX_ATTACHMENT_BYTES,
    MAX_RECIPIENTS,
    Address,
    Attachment,
    EmailMessage,
    html_to_text,
    parse_address,
)
from omnistack_core.email.module import EmailModule, provider_from_settings
from omnistack_core.email.provider import EmailProvider
from omnistack_core.email.providers.console import ConsoleProvider
from omnistack_core.email.providers.memory import MemoryProvider, SentEmail
from omnistack_core.email.send_log import EmailSend, SendLog, email_sends
from omnistack_core.email.sender import (
    SEND_JOB_NAME,
    EmailSender,
    Mailer,
    SendResult,
    email_sender,
    send_email,
    send_email_later,
)
from omnistack_core.email.settings import EmailSettings
from omnistack_core.email.suppression import (
    DeliveryEvent,
    Suppression,
    SuppressionList,
    email_metadata,
    email_suppressions,
    email_webhook_events,
)
from omnistack_core.email.templates import EmailTemplates, RenderedEmail, render_email
from omnistack_core.email.webhook import (
    EmailEvent,
    EmailEventHandler,
    WebhookReceiver,
    resend_event,
    verify_webhook,
)

__all__ = [
    "MAX_ATTACHMENT_BYTES",
    "MAX_RECIPIENTS",
    "SEND_JOB_NAME",
    "Address",
    "Attachment",
    "ConsoleProvider",
    "DeliveryEvent",
    "EmailDeliveryError",
    "EmailError",
    "EmailEvent",
    "EmailEventHandler",
    "EmailMessage",
    "EmailModule",
    "EmailProvider",
    "EmailSend",
    "EmailSender",
    "EmailSettings",
    "EmailTemplateError",
    "EmailTemplates",
    "EmailTransientError",
    "InvalidMessageError",
    "Mailer",
    "MemoryProvider",
    "RenderedEmail",
    "SendLog",
    "SendResult",
    "SentEmail",
    "Suppression",
    "SuppressionList",
    "WebhookReceiver",
    "WebhookVerificationError",
    "email_metadata",
    "email_sender",
    "email_sends",
    "email_suppressions",
    "email_webhook_events",
    "html_to_text",
    "parse_address",
    "provider_from_settings",
    "render_email",
    "resend_event",
    "send_email",
    "send_email_later",
    "verify_webhook",
]
