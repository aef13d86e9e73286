"""The console provider (the development default) and the memory provider (for tests)."""

from __future__ import annotations

import logging

import pytest

from omnistack_core.email import (
    Attachment,
    ConsoleProvider,
    EmailMessage,
    EmailModule,
    MemoryProvider,
    send_email,
)
from tests.email.email_apps import SENDER, email_app, running


def message(**fields: object) -> EmailMessage:
    values: dict[str, object] = {
        "to": "ada@example.com",
        "subject": "Welcome",
        "html": "<p>Hello <b>Ada</b></p>",
        "from_": SENDER,
    }
    values.update(fields)
    return EmailMessage(**values)  # type: ignore[arg-type]


async def test_the_console_provider_logs_the_message_and_lists_attachments(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent = message(
        cc="carol@example.com",
        tags={"category": "welcome"},
        attachments=[Attachment("notes.txt", b"secret file content")],
    )

    with caplog.at_level(logging.INFO, logger="omnistack.email"):
        message_id = await ConsoleProvider().send(sent, idempotency_key="welcome/1")

    [record] = caplog.records
    text = record.getMessage()
    assert message_id.startswith("console-")
    assert message_id in text
    assert "welcome/1" in text
    assert f"From: {SENDER}" in text
    assert "To: ada@example.com" in text
    assert "Cc: carol@example.com" in text
    assert "Subject: Welcome" in text
    assert "Tags: category=welcome" in text
    assert "Attachment: notes.txt (text/plain, 19 bytes)" in text
    assert text.endswith("Hello Ada")
    assert "secret file content" not in text


async def test_the_memory_provider_keeps_messages_and_honours_keys() -> None:
    memory = MemoryProvider()

    first = await memory.send(message(), idempotency_key="k1")
    repeat = await memory.send(message(), idempotency_key="k1")
    await memory.send(message(to="bob@example.com"), idempotency_key="k2")

    assert first == repeat
    assert [sent.idempotency_key for sent in memory.outbox] == ["k1", "k2"]
    assert [m.subject for m in memory.sent_to("Ada <ADA@example.com>")] == ["Welcome"]
    assert memory.sent_to("carol@example.com") == []
    memory.clear()
    assert memory.outbox == []


async def test_development_uses_the_console_provider_by_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = email_app()

    with caplog.at_level(logging.INFO, logger="omnistack.email"):
        async with running(app):
            result = await send_email(app, message(from_=None, to="bob@example.com"))

    assert result.provider == "console"
    assert result.status == "sent"
    assert any("To: bob@example.com" in r.getMessage() for r in caplog.records)


async def test_email_provider_memory_keeps_messages_on_the_apps_provider() -> None:
    app = email_app(email_provider="memory", email_from=SENDER)

    async with running(app):
        await send_email(app, message(from_=None))
        provider = EmailModule.of(app).provider

    assert isinstance(provider, MemoryProvider)
    [sent] = provider.outbox
    assert sent.message.from_ == SENDER


async def test_a_provider_given_to_the_module_is_used_and_not_closed() -> None:
    memory = MemoryProvider()
    app = email_app(EmailModule(provider=memory), email_from=SENDER)

    async with running(app):
        result = await send_email(app, message())

    assert result.provider == "memory"
    assert len(memory.outbox) == 1
