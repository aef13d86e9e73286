"""Resend's delivery webhooks: verified, handled once, bounces and complaints suppressed."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from omnistack_core.email import (
    EmailEvent,
    EmailMessage,
    EmailModule,
    MemoryProvider,
    WebhookVerificationError,
    email_suppressions,
    email_webhook_events,
    send_email,
    verify_webhook,
)
from omnistack_core.testing.resend_server import LocalResend, sign_webhook
from tests.email.email_apps import SENDER, email_app, running

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
BODY = b'{"type":"email.delivered","created_at":"2026-03-01T10:00:00.000Z","data":{}}'


# Signature verification -----------------------------------------------------------------------


def test_a_correctly_signed_webhook_is_accepted() -> None:
    headers = sign_webhook(SECRET, BODY, msg_id="msg_1")

    assert verify_webhook(SECRET, headers, BODY) == "msg_1"


def test_one_matching_signature_among_several_is_enough() -> None:
    headers = sign_webhook(SECRET, BODY, msg_id="msg_1")
    other = sign_webhook("whsec_" + base64.b64encode(b"x" * 32).decode(), BODY, msg_id="msg_1")
    headers["svix-signature"] = (
        f"v1,bm90LWl0 {other['svix-signature']} v1a,ed25519sig {headers['svix-signature']}"
    )

    assert verify_webhook(SECRET, headers, BODY) == "msg_1"


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda h, b: ({**h, "svix-signature": "v1,AAAA"}, b), "no signature matches"),
        (lambda h, b: (h, b + b" "), "no signature matches"),
        (lambda h, b: ({**h, "svix-id": "msg_other"}, b), "no signature matches"),
        (lambda h, b: ({**h, "svix-signature": h["svix-signature"][3:]}, b), "no signature"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "svix-id"}, b), "are required"),
        (lambda h, b: ({**h, "svix-timestamp": "soon"}, b), "not a Unix time"),
    ],
)
def test_tampered_webhooks_are_refused(tamper: object, reason: str) -> None:
    headers, body = tamper(sign_webhook(SECRET, BODY, msg_id="msg_1"), BODY)  # type: ignore[operator]

    with pytest.raises(WebhookVerificationError, match=reason):
        verify_webhook(SECRET, headers, body)


def test_timestamps_more_than_five_minutes_away_are_refused_both_ways() -> None:
    now = time.time()
    old = sign_webhook(SECRET, BODY, timestamp=int(now) - 301)
    future = sign_webhook(SECRET, BODY, timestamp=int(now) + 301)
    edge = sign_webhook(SECRET, BODY, timestamp=int(now) - 299)

    with pytest.raises(WebhookVerificationError, match="s old"):
        verify_webhook(SECRET, old, BODY, now=now)
    with pytest.raises(WebhookVerificationError, match="in the future"):
        verify_webhook(SECRET, future, BODY, now=now)
    assert verify_webhook(SECRET, edge, BODY, now=now)


def test_the_sdks_own_verifier_agrees_with_ours() -> None:
    import resend  # noqa: PLC0415

    headers = sign_webhook(SECRET, BODY, msg_id="msg_1")

    payload = resend.Webhooks.verify(
        {
            "payload": BODY.decode(),
            "headers": {
                "id": headers["svix-id"],
                "timestamp": headers["svix-timestamp"],
                "signature": headers["svix-signature"],
            },
            "webhook_secret": SECRET,
        }
    )

    assert payload["type"] == "email.delivered"


# The endpoint ---------------------------------------------------------------------------------


@dataclass
class Received:
    events: list[EmailEvent] = field(default_factory=list)
    fail: bool = False

    async def __call__(self, event: EmailEvent, session: AsyncSession) -> None:
        if self.fail:
            raise RuntimeError("the app's handler failed")
        self.events.append(event)


@dataclass
class Harness:
    app: FastAPI
    client: httpx.AsyncClient
    resend: LocalResend
    memory: MemoryProvider
    received: Received

    async def post(self, headers: dict[str, str], body: bytes) -> httpx.Response:
        return await self.client.post("/api/v1/email/webhook", headers=headers, content=body)

    async def count(self, table: object) -> int:
        async with self.app.state.database.session() as session:
            total: int = await session.scalar(select(func.count()).select_from(table))  # type: ignore[arg-type]
            return total


@pytest.fixture
async def harness(resend_server: LocalResend) -> AsyncIterator[Harness]:
    memory = MemoryProvider()
    received = Received()
    module = EmailModule(provider=memory)
    module.on_event(received)
    app = email_app(module, resend_webhook_secret=resend_server.webhook_secret, email_from=SENDER)
    async with running(app) as client:
        yield Harness(app, client, resend_server, memory, received)


async def delivered_email(harness: Harness, to: str = "ada@example.com") -> object:
    """Send through the local Resend, so that the webhook can be about a real delivery."""
    from omnistack_core.email.providers.resend import ResendProvider  # noqa: PLC0415

    provider = ResendProvider(harness.resend.api_key, api_url=harness.resend.url)
    try:
        await provider.send(
            EmailMessage(to=to, subject="Hi", text="Hello", from_=SENDER), idempotency_key=to
        )
    finally:
        await provider.aclose()
    return harness.resend.deliveries[-1]


async def test_a_delivered_event_reaches_the_handler_once(harness: Harness) -> None:
    delivery = await delivered_email(harness)
    headers, body = harness.resend.webhook("email.delivered", delivery)  # type: ignore[arg-type]

    first = await harness.post(headers, body)
    replay = await harness.post(headers, body)

    assert first.status_code == 200
    assert first.json() == {"status": "handled"}
    assert replay.status_code == 200  # Resend retries until it gets a 2xx: 4xx would loop
    assert replay.json() == {"status": "duplicate"}
    [event] = harness.received.events
    assert event.type == "delivered"
    assert event.provider_type == "email.delivered"
    assert event.id == headers["svix-id"]
    assert event.email_id == delivery.id  # type: ignore[attr-defined]
    assert event.recipients == ("ada@example.com",)
    assert event.occurred_at is not None
    assert await harness.count(email_webhook_events) == 1


async def test_a_redelivery_with_a_fresh_signature_is_still_handled_once(
    harness: Harness,
) -> None:
    # Svix signs each attempt anew: same id, new timestamp and signature.
    headers, body = harness.resend.webhook("email.opened", msg_id="msg_retry")
    later = sign_webhook(
        harness.resend.webhook_secret, body, msg_id="msg_retry", timestamp=int(time.time()) + 60
    )

    await harness.post(headers, body)
    again = await harness.post(later, body)

    assert again.json() == {"status": "duplicate"}
    assert [event.type for event in harness.received.events] == ["opened"]


@pytest.mark.parametrize(
    "make",
    [
        lambda r, body: sign_webhook(
            "whsec_" + base64.b64encode(b"another secret key!!").decode(), body
        ),
        lambda r, body: sign_webhook(r.webhook_secret, body, timestamp=int(time.time()) - 600),
        lambda r, body: sign_webhook(r.webhook_secret, body, timestamp=int(time.time()) + 600),
        lambda r, body: {"content-type": "application/json"},
    ],
    ids=["bad signature", "old timestamp", "future timestamp", "unsigned"],
)
async def test_refused_webhooks_get_400_problem_json_and_store_nothing(
    harness: Harness, make: object, caplog: pytest.LogCaptureFixture
) -> None:
    _, body = harness.resend.webhook(
        "email.bounced", to=["ada@example.com"], bounce={"type": "Permanent"}
    )
    headers = make(harness.resend, body)  # type: ignore[operator]

    with caplog.at_level(logging.WARNING, logger="omnistack.email"):
        response = await harness.post(headers, body)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "The webhook could not be verified."
    assert "Refused an email webhook" in caplog.text
    assert harness.received.events == []
    assert await harness.count(email_webhook_events) == 0
    assert await harness.count(email_suppressions) == 0


async def test_a_signed_body_that_is_not_an_event_is_refused(harness: Harness) -> None:
    body = b'{"hello": "world"}'

    response = await harness.post(sign_webhook(harness.resend.webhook_secret, body), body)

    assert response.status_code == 400
    assert await harness.count(email_webhook_events) == 0


async def test_an_oversized_body_gets_413_unread(harness: Harness) -> None:
    body = json.dumps({"type": "email.clicked", "data": {"pad": "x" * 300_000}}).encode()

    response = await harness.post(sign_webhook(harness.resend.webhook_secret, body), body)

    assert response.status_code == 413
    assert harness.received.events == []


async def test_a_hard_bounce_suppresses_the_address_and_later_sends_are_skipped(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    delivery = await delivered_email(harness, "Ada <Ada@Example.com>")
    headers, body = harness.resend.webhook(
        "email.bounced",
        delivery,  # type: ignore[arg-type]
        bounce={
            "type": "Permanent",
            "subType": "General",
            "message": "The recipient's mailbox does not exist.",
        },
    )

    response = await harness.post(headers, body)
    with caplog.at_level(logging.INFO, logger="omnistack.email"):
        skipped = await send_email(
            harness.app, EmailMessage(to="ada@example.com", subject="Again", text="Hi")
        )
        partly = await send_email(
            harness.app,
            EmailMessage(to="bob@example.com", cc="ADA@example.com", subject="Both", text="Hi"),
        )

    assert response.json() == {"status": "handled"}
    [event] = harness.received.events
    assert (event.type, event.bounce) == ("bounced", "hard")
    assert skipped.status == "skipped"
    assert skipped.message_id is None
    assert skipped.suppressed == ("ada@example.com",)
    assert "Skipped an email to suppressed addresses: a***@example.com" in caplog.text
    assert "ada@example.com" not in caplog.text
    assert partly.status == "sent"
    [sent] = harness.memory.outbox
    assert sent.message.to == ("bob@example.com",)
    assert sent.message.cc == ()
    async with harness.app.state.database.session() as session:
        row = (await session.execute(select(email_suppressions))).one()
    assert row.address == "ada@example.com"
    assert row.reason == "bounced"
    assert row.detail == "The recipient's mailbox does not exist."
    assert row.event_id == headers["svix-id"]


async def test_a_complaint_suppresses_the_address(harness: Harness) -> None:
    headers, body = harness.resend.webhook("email.complained", to=["carol@example.com"])

    await harness.post(headers, body)

    assert await EmailModule.of(harness.app).suppressions.find(["carol@example.com"]) == {
        "carol@example.com"
    }


async def test_a_soft_bounce_suppresses_nothing(harness: Harness) -> None:
    headers, body = harness.resend.webhook(
        "email.bounced", to=["ada@example.com"], bounce={"type": "Transient", "message": "Full"}
    )

    await harness.post(headers, body)

    assert harness.received.events[0].bounce == "soft"
    assert await harness.count(email_suppressions) == 0


async def test_other_events_pass_through_with_the_providers_type(harness: Harness) -> None:
    headers, body = harness.resend.webhook("contact.created", id="c_1", email="x@example.com")

    response = await harness.post(headers, body)

    assert response.status_code == 200
    [event] = harness.received.events
    assert event.type == "contact.created"
    assert event.email_id is None
    assert event.data["id"] == "c_1"


async def test_a_failing_handler_rolls_everything_back_so_the_retry_is_handled(
    harness: Harness,
) -> None:
    headers, body = harness.resend.webhook(
        "email.bounced", to=["ada@example.com"], bounce={"type": "Permanent"}
    )
    harness.received.fail = True

    failed = await harness.post(headers, body)
    harness.received.fail = False
    retried = await harness.post(headers, body)

    assert failed.status_code == 500
    assert retried.json() == {"status": "handled"}
    assert len(harness.received.events) == 1
    assert await harness.count(email_suppressions) == 1


async def test_without_a_secret_there_is_no_webhook_endpoint() -> None:
    app = email_app(email_from=SENDER)

    async with running(app) as client:
        response = await client.post("/api/v1/email/webhook", content=BODY)

    assert response.status_code == 404
