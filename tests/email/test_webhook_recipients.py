"""Signed events with recipients that are not addresses: skipped, logged masked, the rest applied.

On PostgreSQL, whose ``varchar(320)`` and text types refuse what SQLite would store.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omnistack_core.email import (
    EmailEvent,
    EmailModule,
    MemoryProvider,
    email_suppressions,
    email_webhook_events,
)
from omnistack_core.email.suppression import masked_address, suppressible_address
from omnistack_core.testing.resend_server import LocalResend, sign_webhook
from tests.email.email_apps import SENDER, email_app, running

LONG_ADDRESS = "x" * 400 + "@example.com"  # 412 characters


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    resend: LocalResend
    events: list[EmailEvent]

    async def post(self, headers: dict[str, str], body: bytes) -> httpx.Response:
        return await self.client.post("/api/v1/email/webhook", headers=headers, content=body)

    async def suppressed(self) -> dict[str, str | None]:
        async with self.app.state.database.session() as session:
            rows = await session.execute(select(email_suppressions))
            return {row.address: row.detail for row in rows}

    async def recorded(self, event_id: str) -> bool:
        async with self.app.state.database.session() as session:
            found = await session.scalar(
                select(email_webhook_events.c.id).where(email_webhook_events.c.id == event_id)
            )
            return found is not None


@pytest.fixture
async def service(postgres_url: str, resend_server: LocalResend) -> AsyncIterator[Service]:
    events: list[EmailEvent] = []

    async def record(event: EmailEvent, session: AsyncSession) -> None:
        events.append(event)

    module = EmailModule(provider=MemoryProvider(), event_handlers=[record])
    app = email_app(
        module,
        database_url=postgres_url,
        resend_webhook_secret=resend_server.webhook_secret,
        email_from=SENDER,
    )
    async with running(app) as client:
        async with app.state.database.session() as session:
            # The database is the session's: each test starts with no suppression.
            await session.execute(email_suppressions.delete())
        yield Service(app, client, resend_server, events)


async def test_a_bounce_applies_its_valid_recipients_and_skips_the_others(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    valid = f"{uuid.uuid4().hex}@example.com"
    headers, body = service.resend.webhook(
        "email.bounced",
        to=[LONG_ADDRESS, "", 12345, None, f"Ada <{valid}>", "a\u0000b@example.com"],
        bounce={"type": "Permanent", "message": "No such user"},
    )

    with caplog.at_level(logging.INFO, logger="omnistack.email"):
        response = await service.post(headers, body)

    assert response.status_code == 200
    assert response.json() == {"status": "handled"}
    assert await service.suppressed() == {valid: "No such user"}
    [event] = service.events
    assert event.recipients == (f"Ada <{valid}>",)
    skipped = [r for r in caplog.records if "skipped a recipient" in r.getMessage()]
    assert len(skipped) == 5
    assert LONG_ADDRESS not in caplog.text
    assert valid not in caplog.text  # even the applied address is logged masked
    assert "(x***@example.com)" in caplog.text


@pytest.mark.parametrize("to", [LONG_ADDRESS, "", 12345, None, ["none"]])
async def test_an_event_with_no_valid_recipient_is_acknowledged_and_suppresses_nothing(
    service: Service, to: object
) -> None:
    headers, body = service.resend.webhook("email.complained", to=to)

    response = await service.post(headers, body)

    assert response.status_code == 200
    assert await service.suppressed() == {}
    assert await service.recorded(headers["svix-id"])  # handled: a redelivery is a duplicate
    assert service.events[0].recipients == ()


async def test_nul_characters_in_stored_text_are_dropped(service: Service) -> None:
    address = f"{uuid.uuid4().hex}@example.com"
    headers, body = service.resend.webhook(
        "email.bounced",
        to=[address],
        email_id="em\u0000_1",
        bounce={"type": "Permanent", "message": "No\u0000 such user"},
    )

    response = await service.post(headers, body)

    assert response.status_code == 200
    assert await service.suppressed() == {address: "No such user"}


async def test_an_id_longer_than_its_column_is_refused_with_400(service: Service) -> None:
    _, body = service.resend.webhook("email.delivered", to=["ada@example.com"])
    headers = sign_webhook(service.resend.webhook_secret, body, msg_id="msg_" + "x" * 300)

    response = await service.post(headers, body)

    assert response.status_code == 400
    assert service.events == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ada@example.com", "a***@example.com"),
        ("Ada Lovelace <ada@example.com>", "a***@example.com"),
        ("not an address", "a str of 14 characters"),
        (12345, "a int"),
        (None, "None"),
    ],
)
def test_masked_addresses_keep_only_the_first_letter_and_the_domain(
    value: object, expected: str
) -> None:
    assert masked_address(value) == expected


@pytest.mark.parametrize("value", [LONG_ADDRESS, "", "12345", "none", 12345, None, "a\u0000@b.c"])
def test_what_names_no_mailbox_is_not_suppressible(value: object) -> None:
    assert suppressible_address(value) is None
