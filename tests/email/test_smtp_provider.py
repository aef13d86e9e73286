"""The SMTP provider against a real SMTP server (aiosmtpd) with STARTTLS, implicit TLS, AUTH."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage as MimeMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SmtpProtocol  # noqa: N811 - not a constant, a class
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from omnistack_core.email import (
    Attachment,
    EmailDeliveryError,
    EmailMessage,
    EmailModule,
    EmailTransientError,
    send_email,
)
from omnistack_core.email.providers.smtp import SmtpProvider
from tests.email.email_apps import email_app, running

USER, PASSWORD = "mailer", "s3cret-password"
SENDER = "Acme <hello@acme.example.com>"


@dataclass
class Mailbox:
    """What the server received."""

    envelopes: list[Envelope] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    reply: str = "250 Message accepted for delivery"
    refuse: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SmtpProtocol,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SmtpProtocol, session: Session, envelope: Envelope
    ) -> str:
        if self.reply.startswith("250"):
            self.envelopes.append(envelope)
            self.sessions.append(session)
        return self.reply

    def message(self, index: int = 0) -> MimeMessage:
        content = self.envelopes[index].content
        assert isinstance(content, bytes)
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, MimeMessage)
        return parsed


@dataclass(frozen=True)
class Certificate:
    cert_pem: bytes
    key_pem: bytes

    def server_context(self, directory: Path) -> ssl.SSLContext:
        cert, key = directory / "cert.pem", directory / "key.pem"
        cert.write_bytes(self.cert_pem)
        key.write_bytes(self.key_pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.cert_pem.decode())


@pytest.fixture(autouse=True)
async def loop_turns_after_each_test() -> AsyncIterator[None]:
    """aiosmtplib closes a failed connection's socket on a later turn of the event loop.

    A service's loop keeps turning; a test's is closed as soon as the test ends, which would
    leave that socket open and reported as leaked.
    """
    yield
    await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def certificate() -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Certificate(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def authenticate(
    server: SmtpProtocol, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@dataclass
class SmtpServer:
    port: int
    mailbox: Mailbox


@pytest.fixture
def starttls_server(certificate: Certificate, tmp_path: Path) -> Iterator[SmtpServer]:
    """A submission server: STARTTLS required, then AUTH required."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        server_hostname="mail.example.com",
        tls_context=certificate.server_context(tmp_path),
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    yield SmtpServer(port, mailbox)
    controller.stop()


@pytest.fixture
def plain_server() -> Iterator[SmtpServer]:
    """A local catcher (Mailpit-like): no TLS, no AUTH."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield SmtpServer(port, mailbox)
    controller.stop()


def provider(server: SmtpServer, certificate: Certificate, **options: Any) -> SmtpProvider:
    values: dict[str, Any] = {
        "username": USER,
        "password": PASSWORD,
        "starttls": True,
        "tls_context": certificate.client_context(),
        "timeout": 5,
    }
    values.update(options)
    return SmtpProvider("127.0.0.1", server.port, **values)


def message(**fields: Any) -> EmailMessage:
    values: dict[str, Any] = {
        "to": "Ada <ada@example.com>",
        "subject": "Your receipt",
        "html": "<p>Thanks for <b>your order</b>.</p>",
        "from_": SENDER,
    }
    values.update(fields)
    return EmailMessage(**values)


async def test_a_message_goes_through_starttls_and_auth(
    starttls_server: SmtpServer, certificate: Certificate
) -> None:
    sent = message(
        cc="carol@example.com",
        bcc="audit@example.com",
        reply_to="support@example.com",
        headers={"List-Unsubscribe": "<https://example.com/unsubscribe>"},
        attachments=[Attachment("receipt.pdf", b"%PDF-1.7\n", "application/pdf")],
    )

    message_id = await provider(starttls_server, certificate).send(sent, idempotency_key="r/1")

    [envelope] = starttls_server.mailbox.envelopes
    [session] = starttls_server.mailbox.sessions
    assert session.ssl is not None  # the conversation was upgraded to TLS
    assert session.authenticated
    assert envelope.mail_from == "hello@acme.example.com"
    assert sorted(envelope.rcpt_tos) == [
        "ada@example.com",
        "audit@example.com",
        "carol@example.com",
    ]
    received = starttls_server.mailbox.message()
    assert received["From"] == SENDER
    assert received["To"] == "Ada <ada@example.com>"
    assert received["Cc"] == "carol@example.com"
    assert received["Bcc"] is None  # blind copies travel in the envelope only
    assert received["Reply-To"] == "support@example.com"
    assert received["Subject"] == "Your receipt"
    assert received["List-Unsubscribe"] == "<https://example.com/unsubscribe>"
    assert received["Message-ID"] == message_id
    assert message_id.endswith("@acme.example.com>")
    text = received.get_body(("plain",))
    html = received.get_body(("html",))
    assert text is not None
    assert html is not None
    assert text.get_content().strip() == "Thanks for your order."
    assert html.get_content().strip() == "<p>Thanks for <b>your order</b>.</p>"
    [attachment] = list(received.iter_attachments())
    assert attachment.get_filename() == "receipt.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == b"%PDF-1.7\n"


async def test_the_same_key_gives_the_same_message_id(
    starttls_server: SmtpServer, certificate: Certificate
) -> None:
    smtp = provider(starttls_server, certificate)

    first = await smtp.send(message(), idempotency_key="r/1")
    again = await smtp.send(message(), idempotency_key="r/1")
    other = await smtp.send(message(), idempotency_key="r/2")

    assert first == again != other


async def test_an_inline_image_is_related_to_the_html(
    starttls_server: SmtpServer, certificate: Certificate
) -> None:
    sent = message(
        html='<p><img src="cid:logo"></p>',
        attachments=[Attachment("logo.png", b"\x89PNG\r\n", content_id="logo")],
    )

    await provider(starttls_server, certificate).send(sent, idempotency_key="k")

    received = starttls_server.mailbox.message()
    related = next(
        part for part in received.walk() if part.get_content_type() == "multipart/related"
    )
    image = next(part for part in related.iter_parts() if part.get_content_type() == "image/png")
    assert image["Content-ID"] == "<logo>"
    assert image.get_content() == b"\x89PNG\r\n"


async def test_a_wrong_password_is_a_permanent_error(
    starttls_server: SmtpServer, certificate: Certificate
) -> None:
    with pytest.raises(EmailDeliveryError) as caught:
        await provider(starttls_server, certificate, password="wrong").send(
            message(), idempotency_key="k"
        )

    assert caught.value.status == 535
    assert PASSWORD not in str(caught.value)
    assert starttls_server.mailbox.envelopes == []


async def test_an_untrusted_certificate_is_refused(starttls_server: SmtpServer) -> None:
    smtp = SmtpProvider(
        "127.0.0.1", starttls_server.port, username=USER, password=PASSWORD, timeout=5
    )

    with pytest.raises(EmailDeliveryError, match="TLS"):
        await smtp.send(message(), idempotency_key="k")

    assert starttls_server.mailbox.envelopes == []


async def test_starttls_is_required_when_configured(
    plain_server: SmtpServer, certificate: Certificate
) -> None:
    smtp = provider(plain_server, certificate, username=None, password=None)

    with pytest.raises(EmailDeliveryError, match="STARTTLS"):
        await smtp.send(message(), idempotency_key="k")

    assert plain_server.mailbox.envelopes == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_implicit_tls(certificate: Certificate, tmp_path: Path) -> None:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        ssl_context=certificate.server_context(tmp_path),
        authenticator=authenticate,
        auth_required=True,
        # aiosmtpd only counts STARTTLS as TLS; this whole connection is TLS already.
        auth_require_tls=False,
    )
    controller.start()
    server = SmtpServer(port, mailbox)
    try:
        await provider(server, certificate, starttls=False, tls=True).send(
            message(), idempotency_key="k"
        )
        with pytest.raises(EmailTransientError):
            # The same server spoken to in clear text: it only speaks TLS.
            await provider(server, certificate, starttls=False, timeout=1).send(
                message(), idempotency_key="k"
            )
    finally:
        controller.stop()

    [session] = mailbox.sessions
    assert session.authenticated


async def test_a_4xx_reply_is_transient_and_a_5xx_reply_permanent(
    starttls_server: SmtpServer, certificate: Certificate
) -> None:
    smtp = provider(starttls_server, certificate)
    starttls_server.mailbox.reply = "451 4.3.0 Try again later"
    with pytest.raises(EmailTransientError) as transient:
        await smtp.send(message(), idempotency_key="k")

    starttls_server.mailbox.reply = "554 5.7.1 Message rejected"
    with pytest.raises(EmailDeliveryError) as permanent:
        await smtp.send(message(), idempotency_key="k")

    assert transient.value.status == 451
    assert permanent.value.status == 554


async def test_every_recipient_refused_is_an_error_and_some_refused_is_not(
    starttls_server: SmtpServer, certificate: Certificate
) -> None:
    smtp = provider(starttls_server, certificate)
    starttls_server.mailbox.refuse = {"ada@example.com": "550 5.1.1 No such user"}

    with pytest.raises(EmailDeliveryError) as caught:
        await smtp.send(message(), idempotency_key="k")
    await smtp.send(message(cc="carol@example.com"), idempotency_key="k2")

    assert caught.value.status == 550
    [envelope] = starttls_server.mailbox.envelopes
    assert envelope.rcpt_tos == ["carol@example.com"]


async def test_no_server_is_transient() -> None:
    smtp = SmtpProvider("127.0.0.1", free_port(), starttls=False, timeout=2)

    with pytest.raises(EmailTransientError, match="cannot be reached"):
        await smtp.send(message(), idempotency_key="k")


async def test_the_module_sends_over_smtp_as_the_settings_say(plain_server: SmtpServer) -> None:
    app = email_app(
        EmailModule(),
        email_provider="smtp",
        smtp_host="127.0.0.1",
        smtp_port=plain_server.port,
        smtp_starttls=False,
        email_from=SENDER,
    )

    async with running(app):
        result = await send_email(
            app, EmailMessage(to="ada@example.com", subject="Hi", text="Hello")
        )

    assert result.status == "sent"
    assert result.provider == "smtp"
    received = plain_server.mailbox.message()
    assert received["From"] == SENDER
    assert received.get_content().strip() == "Hello"
