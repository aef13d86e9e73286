"""``EmailModule``: plugs sending, templates and delivery events into ``create_app``."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy import MetaData
from starlette.applications import Starlette

from omnistack_core.email.provider import EmailProvider
from omnistack_core.email.send_log import SendLog
from omnistack_core.email.sender import EmailSender
from omnistack_core.email.settings import EmailSettings
from omnistack_core.email.suppression import SuppressionList, email_metadata
from omnistack_core.email.templates import EmailTemplates
from omnistack_core.email.webhook import WEBHOOKS, EmailEventHandler, WebhookReceiver, router
from omnistack_core.installation import Installation, resource_of
from omnistack_core.migration_branch import MigrationBranch
from omnistack_core.module import Module

logger = logging.getLogger("omnistack.email")


class EmailModule(Module[EmailSettings]):
    """Sends email through ``EMAIL_PROVIDER`` and receives Resend's delivery events.

    Install it with ``create_app(modules=[EmailModule()])``; send with
    :func:`~omnistack_core.email.send_email` (or the ``Mailer`` dependency) and
    :func:`~omnistack_core.email.send_email_later`, whose send job the module gives the jobs
    module. While the app runs, ``EmailModule.of(app)`` is the
    :class:`~omnistack_core.email.EmailSender`. With ``RESEND_WEBHOOK_SECRET`` set,
    ``POST /api/v1/email/webhook`` takes Resend's webhooks: hard bounces and complaints
    suppress their address, and each event reaches the handlers registered with
    :meth:`on_event`.

    Args:
        provider: Send through this provider instead of the one ``EMAIL_PROVIDER`` names
            (a custom provider, or a ``MemoryProvider`` a test inspects). The caller closes it.
        event_handlers: Handlers of delivery events; more can be added with :meth:`on_event`.
    """

    name = "email"
    settings_class = EmailSettings

    def __init__(
        self,
        *,
        provider: EmailProvider | None = None,
        event_handlers: Sequence[EmailEventHandler] = (),
    ) -> None:
        self.provider = provider
        self.event_handlers = list(event_handlers)

    @classmethod
    def of(cls, app: Starlette) -> EmailSender:
        """The running app's sender.

        Raises:
            ModuleNotRunningError: The app does not run the email module.
        """
        return resource_of(app, cls.name, EmailSender)

    def on_event(self, handler: EmailEventHandler) -> EmailEventHandler:
        """Register a delivery event handler; usable as a decorator."""
        self.event_handlers.append(handler)
        return handler

    def routers(self, settings: EmailSettings) -> Sequence[APIRouter]:
        """``POST /email/webhook``, when ``RESEND_WEBHOOK_SECRET`` is set."""
        return [router] if settings.resend_webhook_secret else []

    def metadata(self) -> Sequence[MetaData]:
        """The ``email_suppressions``, ``email_webhook_events`` and ``email_sends`` tables."""
        return [email_metadata]

    def migrations(self) -> MigrationBranch:
        """The ``omnistack_email`` branch: the revisions of the email tables."""
        return MigrationBranch("omnistack_email", "omnistack_core.email:migrations")

    def jobs(self) -> Sequence[Callable[..., Awaitable[Any]]]:
        """The send job of :func:`~omnistack_core.email.send_email_later`, with the jobs extra."""
        if not (importlib.util.find_spec("arq") and importlib.util.find_spec("redis")):
            return []
        from omnistack_core.email.jobs import send_email_job  # noqa: PLC0415 - the jobs extra

        return [send_email_job]

    def summary(self, settings: EmailSettings) -> str:
        """The provider and the sender."""
        provider = self.provider.name if self.provider else settings.email_provider
        return f"{provider} email from {settings.email_from}"

    def lifespan(self, app: FastAPI, settings: EmailSettings) -> AbstractAsyncContextManager[None]:
        """Build the provider and the sender; close the provider at shutdown."""
        return self._running(app, settings)

    @asynccontextmanager
    async def _running(self, app: FastAPI, settings: EmailSettings) -> AsyncIterator[None]:
        installation = Installation.of(app)
        database = installation.require_database()
        provider = self.provider or provider_from_settings(settings)
        directory = settings.templates_dir
        suppressions = SuppressionList(database)
        sender = EmailSender(
            provider,
            default_from=settings.email_from,
            suppressions=suppressions,
            templates=EmailTemplates([directory.resolve()] if directory else []),
            rate_limit_retries=settings.email_rate_limit_retries,
            rate_limit_max_wait=settings.email_rate_limit_max_wait,
            send_log=SendLog(database),
        )
        installation.provide(self.name, sender)
        if settings.resend_webhook_secret is not None:
            receiver = WebhookReceiver(
                settings.resend_webhook_secret.get_secret_value(),
                database,
                suppressions,
                self.event_handlers,
                max_bytes=settings.email_webhook_max_bytes,
            )
            installation.provide(WEBHOOKS, receiver)
        logger.info("Email goes through the %s provider", provider.name)
        try:
            yield
        finally:
            if self.provider is None:
                await provider.aclose()


def provider_from_settings(settings: EmailSettings) -> EmailProvider:
    """The provider ``EMAIL_PROVIDER`` names, configured from ``settings``.

    Its SDK is imported now, not when the library is: a service pays only for the provider
    it uses.
    """
    match settings.email_provider:
        case "resend":
            from omnistack_core.email.providers.resend import ResendProvider  # noqa: PLC0415

            if settings.resend_api_key is None:  # pragma: no cover - the settings refuse it
                raise RuntimeError("RESEND_API_KEY is not set")
            return ResendProvider(
                settings.resend_api_key,
                api_url=settings.resend_api_url,
                timeout=settings.email_timeout,
            )
        case "smtp":
            from omnistack_core.email.providers.smtp import SmtpProvider  # noqa: PLC0415

            if settings.smtp_host is None:  # pragma: no cover - the settings refuse it
                raise RuntimeError("SMTP_HOST is not set")
            return SmtpProvider(
                settings.smtp_host,
                settings.resolved_smtp_port,
                username=settings.smtp_username,
                password=settings.smtp_password,
                starttls=settings.resolved_smtp_starttls,
                tls=settings.smtp_tls,
                timeout=settings.email_timeout,
            )
        case "memory":
            from omnistack_core.email.providers.memory import MemoryProvider  # noqa: PLC0415

            return MemoryProvider()
        case _:
            from omnistack_core.email.providers.console import ConsoleProvider  # noqa: PLC0415

            return ConsoleProvider()
