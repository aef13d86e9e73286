"""The SMTP provider: any mail server, over implicit TLS or STARTTLS, with AUTH."""

from __future__ import annotations

import email.policy
import email.utils
import hashlib
import logging
import ssl
from email.message import EmailMessage as MimeMessage

import aiosmtplib
from pydantic import SecretStr

from omnistack_core.email.errors import EmailDeliveryError, EmailTransientError, InvalidMessageError
from omnistack_core.email.message import EmailMessage, parse_address
from omnistack_core.email.provider import EmailProvider

logger = logging.getLogger("omnistack.email")


class SmtpProvider(EmailProvider):
    """Sends each message in its own SMTP conversation.

    SMTP has no idempotency keys, so the key becomes the ``Message-ID`` (the same key, the
    same id: receivers that de-duplicate by it drop a repeat) and, for Resend's SMTP relay,
    the ``Resend-Idempotency-Key`` header it honours. Tags have no SMTP equivalent and are
    not sent.

    Args:
        host: The server.
        port: Its port (465 for implicit TLS, 587 for STARTTLS).
        username: The login, when the server wants one.
        password: Its password.
        starttls: Upgrade with STARTTLS, and fail if the server does not offer it.
        tls: Connect with TLS from the start. Exclusive with ``starttls``.
        timeout: Seconds each step of the conversation may take.
        tls_context: Certificates to trust instead of the system's (a private CA).
    """

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        username: str | None = None,
        password: SecretStr | str | None = None,
        starttls: bool = True,
        tls: bool = False,
        timeout: float = 15.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if starttls and tls:
            raise ValueError("starttls and tls exclude each other")
        self.host = host
        self.port = port
        self.username = username
        self._password = SecretStr(password) if isinstance(password, str) else password
        self.starttls = starttls
        self.tls = tls
        self.timeout = timeout
        self.tls_context = tls_context

    async def send(self, message: EmailMessage, *, idempotency_key: str) -> str:
        """Send ``message`` over SMTP.

        Raises:
            EmailDeliveryError: The server refused the login, the sender or every recipient
                for good (5xx), or lacks STARTTLS when it is required.
            EmailTransientError: The server cannot be reached or answered 4xx.
        """
        if message.from_ is None:
            raise InvalidMessageError(["from: no sender: pass from_ or set EMAIL_FROM"])
        mime, message_id = self._mime(message, idempotency_key)
        envelope = [parse_address(address).email for address in message.recipients]
        try:
            refused, _ = await aiosmtplib.send(
                mime,
                sender=parse_address(message.from_).email,
                recipients=envelope,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self._password.get_secret_value() if self._password else None,
                use_tls=self.tls,
                start_tls=self.starttls,
                tls_context=self.tls_context,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refusal.code for refusal in exc.recipients]
            raise _by_code(min(codes, default=550), "the server refused every recipient") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _by_code(exc.code, exc.message) from exc
        except ssl.SSLError as exc:
            raise EmailDeliveryError(
                f"TLS with {self.host}:{self.port} failed: {exc}", provider=self.name
            ) from exc
        except (
            aiosmtplib.SMTPConnectError,
            aiosmtplib.SMTPServerDisconnected,
            aiosmtplib.SMTPTimeoutError,
            OSError,
        ) as exc:
            raise EmailTransientError(
                f"the SMTP server at {self.host}:{self.port} cannot be reached: "
                f"{type(exc).__name__}: {exc}",
                provider=self.name,
            ) from exc
        except aiosmtplib.SMTPException as exc:
            # What is left is the server lacking what the settings require (STARTTLS, AUTH).
            raise EmailDeliveryError(
                f"the SMTP server at {self.host}:{self.port} cannot do what is configured: {exc}",
                provider=self.name,
            ) from exc
        if refused:
            # Some recipients took it: sending again would duplicate it for them.
            logger.warning(
                "The SMTP server refused %d of %d recipients of message %s",
                len(refused),
                len(envelope),
                message_id,
            )
        return message_id

    def _mime(self, message: EmailMessage, idempotency_key: str) -> tuple[MimeMessage, str]:
        assert message.from_ is not None  # noqa: S101 - checked by send()
        domain = parse_address(message.from_).email.rpartition("@")[2]
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]
        message_id = f"<{digest}@{domain}>"
        mime = MimeMessage(policy=email.policy.SMTP)
        mime["From"] = message.from_
        mime["To"] = ", ".join(message.to)
        if message.cc:
            mime["Cc"] = ", ".join(message.cc)
        if message.reply_to:
            mime["Reply-To"] = ", ".join(message.reply_to)
        mime["Subject"] = message.subject
        mime["Date"] = email.utils.formatdate(usegmt=True)
        mime["Message-ID"] = message_id
        if self.host.lower().rstrip(".").endswith("resend.com"):
            mime["Resend-Idempotency-Key"] = idempotency_key
        for name, value in message.headers.items():
            mime[name] = value
        mime.set_content(message.text)
        if message.html is not None:
            mime.add_alternative(message.html, subtype="html")
        payload = mime.get_payload()
        html_part = payload[-1] if message.html is not None and isinstance(payload, list) else None
        for attachment in message.attachments:
            maintype, _, subtype = attachment.media_type.partition("/")
            if attachment.content_id and isinstance(html_part, MimeMessage):
                html_part.add_related(
                    attachment.content,
                    maintype=maintype,
                    subtype=subtype,
                    cid=f"<{attachment.content_id}>",
                    filename=attachment.filename,
                    disposition="inline",
                )
            else:
                mime.add_attachment(
                    attachment.content,
                    maintype=maintype,
                    subtype=subtype,
                    filename=attachment.filename,
                )
        return mime, message_id


def _by_code(code: int, reply: str) -> EmailDeliveryError | EmailTransientError:
    # RFC 5321: 4yz replies are transient ("try again later"), 5yz permanent.
    text = f"the SMTP server answered {code}: {reply}"
    if 400 <= code < 500:
        return EmailTransientError(text, provider="smtp", status=code)
    return EmailDeliveryError(text, provider="smtp", status=code)
