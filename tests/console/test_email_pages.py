"""The email pages: the suppression list and removing one, recent sends, delivery events."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert

from omnistack_core.email import (
    EmailMessage,
    EmailModule,
    email_metadata,
    email_webhook_events,
    send_email,
)
from omnistack_core.testing import app_client
from tests.console.service import console_app, create_tables
from tests.console.test_access import LOCAL, csrf_of, sign_in


@pytest.fixture
async def running(empty_postgres_url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = console_app([EmailModule()], database_url=empty_postgres_url, console_page_size=5)
    async with app_client(app, base_url=LOCAL) as client:
        await create_tables(app, email_metadata)
        suppressions = EmailModule.of(app).suppressions
        assert suppressions is not None
        for number in range(12):
            await suppressions.add(f"user{number:02}@example.com", "bounced")
        await suppressions.add("ada@example.com", "complained", detail="marked as spam")
        await sign_in(client)
        yield app, client


def addresses(page: httpx.Response) -> list[str]:
    return re.findall(r'<code class="address">([^<]+)</code>', page.text)


async def test_suppressions_page_through_and_search(
    running: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = running
    seen: list[str] = []
    url = "/console/email"
    while url:
        page = await client.get(url)
        seen += addresses(page)
        found = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        url = found.group(1).replace("&amp;", "&") if found else ""
    assert seen == ["ada@example.com", *(f"user{n:02}@example.com" for n in range(12))]
    searched = await client.get("/console/email", params={"search": "ADA"})
    assert addresses(searched) == ["ada@example.com"]
    assert "marked as spam" in searched.text


async def test_removing_a_suppression_asks_first_then_sends_again(
    running: tuple[FastAPI, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    app, client = running
    caplog.set_level(logging.INFO, logger="omnistack.console")
    confirm = await client.get(
        "/console/email/suppressions/remove", params={"address": "ada@example.com"}
    )
    assert "will be sent again" in confirm.text
    suppressions = EmailModule.of(app).suppressions
    assert suppressions is not None
    assert await suppressions.find(["ada@example.com"]) == {"ada@example.com"}  # not yet
    refused = await client.post(
        "/console/email/suppressions/remove", data={"address": "ada@example.com"}
    )
    assert refused.status_code == 403
    done = await client.post(
        "/console/email/suppressions/remove",
        data={"address": "ada@example.com", "csrf_token": csrf_of(confirm)},
    )
    assert "no longer suppressed" in (await client.get(done.headers["location"])).text
    assert await suppressions.find(["ada@example.com"]) == set()
    (record,) = [
        r for r in caplog.records if getattr(r, "console_action", "") == "email.unsuppress"
    ]
    assert record.console_target == "a***@example.com"  # type: ignore[attr-defined]
    assert record.console_outcome == "removed"  # type: ignore[attr-defined]


async def test_delivery_events_and_the_latest_status_of_each_send(
    running: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = running
    start = datetime(2026, 12, 1, tzinfo=UTC)
    rows = [
        {"id": "m1", "type": "email.sent", "email_id": "em_1", "received_at": start},
        {
            "id": "m2",
            "type": "email.delivered",
            "email_id": "em_1",
            "received_at": start + timedelta(seconds=1),
        },
        {
            "id": "m3",
            "type": "email.bounced",
            "email_id": "em_2",
            "received_at": start + timedelta(seconds=2),
        },
    ]
    async with app.state.database.session() as session:
        await session.execute(insert(email_webhook_events), rows)
    page = await client.get("/console/email/events")
    assert re.findall(r'<code class="event-id">([^<]+)</code>', page.text) == ["m3", "m2", "m1"]
    sends = dict(re.findall(r"<td><code>(em_\d)</code></td><td><span[^>]*>(\w+)</span>", page.text))
    assert sends == {"em_2": "bounced", "em_1": "delivered"}


async def test_recent_sends_page_through_with_their_status_and_filter(
    running: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = running
    # Through the console provider: sends no webhook ever reports, recorded all the same.
    for number in range(7):
        await send_email(
            app,
            EmailMessage(to=f"reader{number}@example.com", subject=f"Issue {number}", text="x"),
        )
    await send_email(app, EmailMessage(to="user03@example.com", subject="Skipped", text="x"))

    seen: list[str] = []
    url = "/console/email/sends"
    while url:
        page = await client.get(url)
        seen += re.findall(r"<td>(Issue \d|Skipped)</td>", page.text)
        found = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        url = found.group(1).replace("&amp;", "&") if found else ""
    assert sorted(seen) == sorted(["Skipped", *(f"Issue {n}" for n in range(7))])
    assert "reader0@example.com" not in page.text  # only masked

    skipped = await client.get("/console/email/sends", params={"status": "skipped"})
    assert re.findall(r"<td>(Issue \d|Skipped)</td>", skipped.text) == ["Skipped"]
    assert "u***@example.com" in skipped.text
    assert 'status-skipped">skipped<' in skipped.text
