"""The Resend provider, through Resend's official SDK, against a local Resend."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import pytest
import resend

from omnistack_core.email import (
    Attachment,
    EmailDeliveryError,
    EmailMessage,
    EmailTransientError,
)
from omnistack_core.email.providers.resend import ResendProvider
from omnistack_core.testing.resend_server import LocalResend

SENDER = "Acme <hello@acme.example.com>"


@pytest.fixture
async def provider(resend_server: LocalResend) -> AsyncIterator[ResendProvider]:
    provider = ResendProvider(resend_server.api_key, api_url=resend_server.url)
    yield provider
    await provider.aclose()


def message(**fields: object) -> EmailMessage:
    values: dict[str, object] = {
        "to": "ada@example.com",
        "subject": "Welcome",
        "html": "<p>Hello</p>",
        "from_": SENDER,
    }
    values.update(fields)
    return EmailMessage(**values)  # type: ignore[arg-type]


async def test_the_request_has_the_shape_resends_api_expects(
    provider: ResendProvider, resend_server: LocalResend
) -> None:
    full = message(
        to=["ada@example.com", "Grace <grace@example.com>"],
        cc="carol@example.com",
        bcc=["dan@example.com"],
        reply_to="support@example.com",
        text="Hello (text)",
        headers={"X-Entity-Ref-ID": "order-7", "List-Unsubscribe": "<https://example.com/u>"},
        tags={"category": "welcome", "plan": "pro"},
        attachments=[
            Attachment("receipt.pdf", b"%PDF-1.7\n", "application/pdf"),
            Attachment("logo.png", b"\x89PNG", content_id="logo"),
        ],
    )

    email_id = await provider.send(full, idempotency_key="welcome/user-1")

    [delivery] = resend_server.deliveries
    assert delivery.id == email_id
    assert delivery.payload == {
        "from": SENDER,
        "to": ["ada@example.com", "Grace <grace@example.com>"],
        "cc": ["carol@example.com"],
        "bcc": ["dan@example.com"],
        "reply_to": ["support@example.com"],
        "subject": "Welcome",
        "html": "<p>Hello</p>",
        "text": "Hello (text)",
        "headers": {"X-Entity-Ref-ID": "order-7", "List-Unsubscribe": "<https://example.com/u>"},
        "tags": [{"name": "category", "value": "welcome"}, {"name": "plan", "value": "pro"}],
        "attachments": [
            {
                "filename": "receipt.pdf",
                "content": base64.b64encode(b"%PDF-1.7\n").decode(),
                "content_type": "application/pdf",
            },
            {
                "filename": "logo.png",
                "content": base64.b64encode(b"\x89PNG").decode(),
                "content_type": "image/png",
                "content_id": "logo",
            },
        ],
    }
    assert delivery.attachment(0) == b"%PDF-1.7\n"
    assert delivery.headers["authorization"] == f"Bearer {resend_server.api_key}"
    assert delivery.headers["user-agent"].startswith("resend-python:")


async def test_every_send_carries_the_idempotency_key_header(
    provider: ResendProvider, resend_server: LocalResend
) -> None:
    await provider.send(message(), idempotency_key="receipt/order-42")

    assert resend_server.deliveries[0].headers["idempotency-key"] == "receipt/order-42"
    assert resend_server.deliveries[0].idempotency_key == "receipt/order-42"


async def test_the_same_key_twice_delivers_once_and_answers_the_same_id(
    provider: ResendProvider, resend_server: LocalResend
) -> None:
    first = await provider.send(message(), idempotency_key="k-1")
    second = await provider.send(message(), idempotency_key="k-1")
    other = await provider.send(message(), idempotency_key="k-2")

    assert first == second
    assert other != first
    assert len(resend_server.deliveries) == 2
    assert len(resend_server.requests) == 3


async def test_the_same_key_with_another_message_is_refused(
    provider: ResendProvider, resend_server: LocalResend
) -> None:
    await provider.send(message(), idempotency_key="k-1")

    with pytest.raises(EmailDeliveryError) as caught:
        await provider.send(message(subject="Something else"), idempotency_key="k-1")

    assert caught.value.status == 409
    assert caught.value.code == "invalid_idempotent_request"
    assert len(resend_server.deliveries) == 1


async def test_a_wrong_api_key_is_a_permanent_error(resend_server: LocalResend) -> None:
    provider = ResendProvider("re_wrong", api_url=resend_server.url)
    try:
        with pytest.raises(EmailDeliveryError) as caught:
            await provider.send(message(), idempotency_key="k")
    finally:
        await provider.aclose()

    assert (caught.value.status, caught.value.code) == (403, "invalid_api_key")
    assert resend_server.deliveries == []


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (401, "missing_api_key"),
        (401, "restricted_api_key"),
        (403, "validation_error"),
        (422, "validation_error"),
        (422, "missing_required_field"),
    ],
)
async def test_4xx_answers_are_permanent_errors(
    provider: ResendProvider, resend_server: LocalResend, status: int, name: str
) -> None:
    resend_server.fail_next(status, name, "Nope.")

    with pytest.raises(EmailDeliveryError) as caught:
        await provider.send(message(), idempotency_key="k")

    assert (caught.value.status, caught.value.code) == (status, name)
    assert str(caught.value).startswith(f"Resend answered {status} {name}: ")
    assert caught.value.provider == "resend"


async def test_a_429_is_transient_and_carries_retry_after(
    provider: ResendProvider, resend_server: LocalResend
) -> None:
    resend_server.fail_next(429, retry_after=7)

    with pytest.raises(EmailTransientError) as caught:
        await provider.send(message(), idempotency_key="k")

    assert caught.value.status == 429
    assert caught.value.rate_limited
    assert caught.value.retry_after == 7.0


async def test_the_rate_limit_of_the_server_is_reported_as_a_429(
    resend_server: LocalResend,
) -> None:
    resend_server.rate_limit = 2
    provider = ResendProvider(resend_server.api_key, api_url=resend_server.url)
    try:
        await provider.send(message(), idempotency_key="a")
        await provider.send(message(), idempotency_key="b")
        with pytest.raises(EmailTransientError) as caught:
            await provider.send(message(), idempotency_key="c")
    finally:
        await provider.aclose()

    assert caught.value.rate_limited
    assert caught.value.retry_after is not None
    assert 0 < caught.value.retry_after <= 1
    assert len(resend_server.deliveries) == 2


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_answers_are_transient(
    provider: ResendProvider, resend_server: LocalResend, status: int
) -> None:
    resend_server.fail_next(status)

    with pytest.raises(EmailTransientError) as caught:
        await provider.send(message(), idempotency_key="k")

    assert caught.value.status == status
    assert not caught.value.rate_limited


async def test_an_html_error_page_from_a_proxy_is_transient(
    provider: ResendProvider, resend_server: LocalResend
) -> None:
    resend_server.fail_next(502, body=b"<html>Bad Gateway</html>", content_type="text/html")

    with pytest.raises(EmailTransientError) as caught:
        await provider.send(message(), idempotency_key="k")

    assert caught.value.status == 502


async def test_a_concurrent_request_with_the_same_key_is_transient(
    provider: ResendProvider, resend_server: LocalResend
) -> None:
    resend_server.fail_next(409, "concurrent_idempotent_requests", "In progress.")

    with pytest.raises(EmailTransientError):
        await provider.send(message(), idempotency_key="k")


async def test_no_connection_is_transient() -> None:
    with LocalResend() as server:
        url = server.url
    provider = ResendProvider("re_x", api_url=url)
    try:
        with pytest.raises(EmailTransientError, match="cannot be reached"):
            await provider.send(message(), idempotency_key="k")
    finally:
        await provider.aclose()


async def test_two_providers_on_two_servers_send_concurrently_with_their_own_keys() -> None:
    with LocalResend() as one, LocalResend() as two:
        one.delay = two.delay = 0.05
        first = ResendProvider(one.api_key, api_url=one.url)
        second = ResendProvider(two.api_key, api_url=two.url)
        try:
            await asyncio.gather(
                *(first.send(message(), idempotency_key=f"a{i}") for i in range(3)),
                *(second.send(message(), idempotency_key=f"b{i}") for i in range(3)),
            )
        finally:
            await first.aclose()
            await second.aclose()

        assert sorted(d.idempotency_key or "" for d in one.deliveries) == ["a0", "a1", "a2"]
        assert sorted(d.idempotency_key or "" for d in two.deliveries) == ["b0", "b1", "b2"]


async def test_closing_takes_the_providers_client_out_of_the_sdk(
    provider: ResendProvider,
) -> None:
    await provider.send(message(), idempotency_key="k")
    assert resend.default_async_http_client is not resend._auto_async_http_client

    await provider.aclose()

    assert resend.default_async_http_client is resend._auto_async_http_client


async def test_the_api_key_never_shows_in_the_providers_repr(resend_server: LocalResend) -> None:
    provider = ResendProvider(resend_server.api_key, api_url=resend_server.url)
    await provider.aclose()

    assert resend_server.api_key not in repr(provider)
