"""Every send recorded in ``email_sends``, its status moved by delivery webhooks, on PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, text

from omnistack_core.email import (
    EmailDeliveryError,
    EmailMessage,
    EmailModule,
    EmailSend,
    SendLog,
    email_sends,
    send_email,
)
from omnistack_core.testing.resend_server import LocalResend
from tests.email.email_apps import SENDER, email_app, running


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    resend: LocalResend

    @property
    def log(self) -> SendLog:
        return SendLog(self.app.state.database)

    async def sends(self, status: str | None = None) -> list[EmailSend]:
        return await self.log.page(status=status)


@pytest.fixture
async def service(resend_server: LocalResend, empty_postgres_url: str) -> AsyncIterator[Service]:
    app = email_app(
        email_provider="resend",
        resend_api_key=resend_server.api_key,
        resend_api_url=resend_server.url,
        resend_webhook_secret=resend_server.webhook_secret,
        email_from=SENDER,
        email_rate_limit_retries=0,
        database_url=empty_postgres_url,
    )
    async with running(app) as client:
        yield Service(app, client, resend_server)


async def test_a_send_is_recorded_with_its_message_id_and_no_whole_address(
    service: Service,
) -> None:
    result = await send_email(
        service.app,
        EmailMessage(to="Ada <ada@example.com>", cc="bob@example.com", subject="S" * 300, text="x"),
        idempotency_key="welcome/1",
    )

    [send] = await service.sends()
    assert (send.status, send.provider, send.idempotency_key) == ("sent", "resend", "welcome/1")
    assert send.message_id == result.message_id == service.resend.deliveries[0].id
    assert send.subject == "S" * 200  # bounded
    assert (send.recipients, send.first_recipient) == (2, "a***@example.com")
    assert send.error is None


async def test_a_refused_send_is_recorded_failed_and_still_raises(service: Service) -> None:
    service.resend.fail_next(422, message="The to address ada@example.com is invalid")
    with pytest.raises(EmailDeliveryError):
        await send_email(
            service.app,
            EmailMessage(to="ada@example.com", subject="Hi", text="x"),
            idempotency_key="job-key",
        )
    [failed] = await service.sends("failed")
    assert failed.message_id is None
    assert failed.error is not None
    assert "The to address a***@example.com is invalid" in failed.error

    # The job's retry under the same key is the same send: one row, now sent.
    await send_email(
        service.app,
        EmailMessage(to="ada@example.com", subject="Hi", text="x"),
        idempotency_key="job-key",
    )
    [send] = await service.sends()
    assert (send.id, send.status, send.error) == (failed.id, "sent", None)


async def test_a_send_to_suppressed_addresses_only_is_recorded_skipped(service: Service) -> None:
    await EmailModule.of(service.app).suppressions.add("ada@example.com", "bounced")  # type: ignore[union-attr]
    await send_email(service.app, EmailMessage(to="ada@example.com", subject="Hi", text="x"))

    [send] = await service.sends()
    assert send.status == "skipped"
    assert service.resend.deliveries == []


async def test_a_failure_to_record_is_logged_and_the_send_stands(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    async with service.app.state.database.engine.begin() as connection:
        await connection.execute(text("DROP TABLE email_sends"))

    with caplog.at_level(logging.WARNING, logger="omnistack.email"):
        result = await send_email(
            service.app, EmailMessage(to="ada@example.com", subject="Hi", text="x")
        )

    assert result.status == "sent"
    assert len(service.resend.deliveries) == 1  # sent once, not retried for the lost record
    assert any("Could not record a sent email send" in r.getMessage() for r in caplog.records)


async def test_delivery_webhooks_move_the_send_forward_never_back(service: Service) -> None:
    await send_email(service.app, EmailMessage(to="ada@example.com", subject="Hi", text="x"))
    delivery = service.resend.deliveries[0]

    async def post(event_type: str) -> None:
        headers, body = service.resend.webhook(event_type, delivery)
        response = await service.client.post("/api/v1/email/webhook", headers=headers, content=body)
        assert response.json() == {"status": "handled"}

    await post("email.delivered")
    assert [send.status for send in await service.sends()] == ["delivered"]
    await post("email.sent")  # late: Resend does not promise order
    assert [send.status for send in await service.sends()] == ["delivered"]
    await post("email.bounced")
    assert [send.status for send in await service.sends("bounced")] != []


async def test_sends_page_newest_first_through_ties_and_by_status(service: Service) -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    rows = [
        {
            "id": f"{number:036}",
            "idempotency_key": f"key-{number}",
            "provider": "smtp",
            "message_id": None,
            "subject": "Hi",
            "recipients": 1,
            "first_recipient": "a***@example.com",
            "status": "failed" if number % 3 == 0 else "sent",
            "error": None,
            # Pairs share a time: the id breaks the tie.
            "created_at": start + timedelta(seconds=number // 2),
            "updated_at": start,
        }
        for number in range(11)
    ]
    async with service.app.state.database.session() as session:
        await session.execute(insert(email_sends), rows)

    async def every(status: str | None) -> list[str]:
        seen: list[str] = []
        after = None
        while page := await service.log.page(after=after, limit=3, status=status):
            seen += [send.idempotency_key for send in page]
            after = (page[-1].created_at, page[-1].id)
        return seen

    assert await every(None) == [f"key-{n}" for n in reversed(range(11))]
    assert await every("failed") == ["key-9", "key-6", "key-3", "key-0"]
