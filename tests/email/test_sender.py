"""Sending now: through the app's sender, with 429s waited out under one idempotency key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from omnistack_core import ModuleNotRunningError
from omnistack_core.email import (
    EmailMessage,
    EmailModule,
    EmailTransientError,
    InvalidMessageError,
    Mailer,
    send_email,
)
from omnistack_core.testing.resend_server import LocalResend
from tests.email.email_apps import SENDER, email_app, running


def resend_app(server: LocalResend, **settings: Any) -> FastAPI:
    return email_app(
        email_provider="resend",
        resend_api_key=server.api_key,
        resend_api_url=server.url,
        email_from=SENDER,
        **settings,
    )


def message(**fields: Any) -> EmailMessage:
    values: dict[str, Any] = {"to": "ada@example.com", "subject": "Hi", "text": "Hello"}
    values.update(fields)
    return EmailMessage(**values)


@pytest.fixture
async def app(resend_server: LocalResend) -> AsyncIterator[FastAPI]:
    app = resend_app(resend_server)
    async with running(app):
        yield app


async def test_resend_api_url_points_the_sdk_at_the_local_server(
    app: FastAPI, resend_server: LocalResend
) -> None:
    result = await send_email(app, message())

    [delivery] = resend_server.deliveries
    assert result.status == "sent"
    assert result.provider == "resend"
    assert result.message_id == delivery.id
    assert delivery.payload["from"] == SENDER
    assert delivery.idempotency_key == result.idempotency_key


async def test_a_429_is_waited_out_with_the_same_key(
    app: FastAPI, resend_server: LocalResend
) -> None:
    resend_server.fail_next(429, retry_after=0.05, times=2)

    result = await send_email(app, message())

    assert result.status == "sent"
    assert [r.status for r in resend_server.requests] == [429, 429, 200]
    keys = {r.headers["idempotency-key"] for r in resend_server.requests}
    assert keys == {result.idempotency_key}
    assert len(resend_server.deliveries) == 1


async def test_the_429s_give_up_after_the_configured_retries(resend_server: LocalResend) -> None:
    app = resend_app(resend_server, email_rate_limit_retries=1)
    resend_server.fail_next(429, retry_after=0.01, times=5)

    async with running(app):
        with pytest.raises(EmailTransientError):
            await send_email(app, message())

    assert len(resend_server.requests) == 2
    assert resend_server.deliveries == []


async def test_a_retry_after_longer_than_the_longest_wait_fails_at_once(
    app: FastAPI, resend_server: LocalResend
) -> None:
    resend_server.fail_next(429, retry_after=60)

    with pytest.raises(EmailTransientError) as caught:
        await send_email(app, message())

    assert caught.value.retry_after == 60
    assert len(resend_server.requests) == 1


async def test_a_5xx_is_not_retried_inline(app: FastAPI, resend_server: LocalResend) -> None:
    resend_server.fail_next(503)

    with pytest.raises(EmailTransientError):
        await send_email(app, message())

    assert len(resend_server.requests) == 1


async def test_a_callers_key_makes_repeated_sends_deliver_once(
    app: FastAPI, resend_server: LocalResend
) -> None:
    first = await send_email(app, message(), idempotency_key="welcome/user-1")
    second = await send_email(app, message(), idempotency_key="welcome/user-1")
    fresh_a = await send_email(app, message())
    fresh_b = await send_email(app, message())

    assert first.message_id == second.message_id
    assert fresh_a.idempotency_key != fresh_b.idempotency_key
    assert len(resend_server.deliveries) == 3


async def test_routes_send_through_the_mailer_dependency(resend_server: LocalResend) -> None:
    app = resend_app(resend_server)

    @app.post("/invite")
    async def invite(mailer: Mailer) -> dict[str, str | None]:
        result = await mailer.send(message(subject="Join us"))
        return {"id": result.message_id}

    async with running(app) as client:
        response = await client.post("/invite")

    assert response.status_code == 200
    assert response.json() == {"id": resend_server.deliveries[0].id}


async def test_send_email_accepts_the_request(resend_server: LocalResend) -> None:
    app = resend_app(resend_server)

    @app.post("/ping")
    async def ping(request: Request) -> dict[str, str]:
        result = await send_email(request, message(subject="Ping"))
        return {"status": result.status}

    async with running(app) as client:
        response = await client.post("/ping")

    assert response.json() == {"status": "sent"}
    assert resend_server.deliveries[0].payload["subject"] == "Ping"


async def test_without_the_module_send_email_says_what_to_install() -> None:
    with pytest.raises(ModuleNotRunningError, match=r"the email module is not installed"):
        await send_email(FastAPI(), message())


async def test_the_provider_is_closed_at_shutdown(resend_server: LocalResend) -> None:
    app = resend_app(resend_server)

    async with running(app):
        await send_email(app, message(subject="Before shutdown"))
        client = EmailModule.of(app).provider._http
        assert isinstance(client, httpx.AsyncClient)

    assert client.is_closed


async def test_the_provider_opens_no_connection_pool_until_it_sends(
    resend_server: LocalResend,
) -> None:
    app = resend_app(resend_server)

    async with running(app):
        assert EmailModule.of(app).provider._http is None


async def test_an_idempotency_key_resend_would_refuse_is_refused_before_sending(
    app: FastAPI, resend_server: LocalResend
) -> None:
    with pytest.raises(InvalidMessageError, match="1 to 256 characters"):
        await send_email(app, message(), idempotency_key="k" * 257)

    assert resend_server.requests == []
