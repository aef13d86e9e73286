"""The email tables on PostgreSQL: concurrent redeliveries are handled once."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from omnistack_core.email import EmailEvent, EmailMessage, EmailModule, MemoryProvider, send_email
from omnistack_core.testing.resend_server import LocalResend
from tests.email.email_apps import SENDER, email_app, running


async def test_concurrent_deliveries_of_one_webhook_are_handled_once(
    postgres_url: str, resend_server: LocalResend
) -> None:
    handled: list[str] = []

    async def slow_handler(event: EmailEvent, session: AsyncSession) -> None:
        await asyncio.sleep(0.2)  # keeps the first transaction open while the second arrives
        handled.append(event.id)

    address = f"{uuid.uuid4().hex}@example.com"
    module = EmailModule(provider=MemoryProvider(), event_handlers=[slow_handler])
    app = email_app(
        module,
        database_url=postgres_url,
        resend_webhook_secret=resend_server.webhook_secret,
        email_from=SENDER,
    )
    headers, body = resend_server.webhook(
        "email.bounced", to=[address], bounce={"type": "Permanent", "message": "No such user"}
    )

    async with running(app) as client:
        responses = await asyncio.gather(
            *(client.post("/api/v1/email/webhook", headers=headers, content=body) for _ in range(3))
        )
        result = await send_email(app, EmailMessage(to=address, subject="Hi", text="Hello"))
        removed = await EmailModule.of(app).suppressions.remove(address.upper())
        again = await send_email(app, EmailMessage(to=address, subject="Hi", text="Hello"))

    assert sorted(r.json()["status"] for r in responses) == ["duplicate", "duplicate", "handled"]
    assert handled == [headers["svix-id"]]
    assert result.status == "skipped"
    assert removed
    assert again.status == "sent"
