"""The local Resend answers as Resend does."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from omnistack_core.testing.resend_server import LocalResend

BODY = {
    "from": "Acme <hello@acme.example.com>",
    "to": ["ada@example.com"],
    "subject": "Hi",
    "html": "<p>Hi</p>",
}


async def post(
    server: LocalResend, body: Any, *, key: str | None = None, api_key: str | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {api_key or server.api_key}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    async with httpx.AsyncClient(base_url=server.url) as client:
        return await client.post("/emails", json=body, headers=headers)


async def test_a_send_answers_200_with_the_id(resend_server: LocalResend) -> None:
    response = await post(resend_server, BODY)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"id": resend_server.deliveries[0].id}


async def test_errors_have_resends_body(resend_server: LocalResend) -> None:
    async with httpx.AsyncClient(base_url=resend_server.url) as client:
        missing = await client.post("/emails", json=BODY)

    wrong = await post(resend_server, BODY, api_key="re_wrong")

    assert missing.status_code == 401
    assert missing.json() == {
        "statusCode": 401,
        "name": "missing_api_key",
        "message": "Missing API key in the authorization header.",
    }
    assert wrong.status_code == 403
    assert wrong.json()["name"] == "invalid_api_key"
    assert resend_server.deliveries == []


@pytest.mark.parametrize(
    ("change", "name", "message"),
    [
        ({"from": None}, "missing_required_field", "Missing `from` field."),
        ({"to": []}, "missing_required_field", "Missing `to` field."),
        ({"subject": None}, "missing_required_field", "Missing `subject` field."),
        ({"html": None}, "missing_required_field", "Missing `html` or `text` field."),
        ({"to": ["not-an-address"]}, "validation_error", "Invalid `to` field."),
        ({"cc": "Ada <nope>"}, "validation_error", "Invalid `cc` field."),
        ({"tags": [{"name": "no spaces"}]}, "validation_error", "Tags should only contain"),
        ({"attachments": [{"filename": "a.txt"}]}, "invalid_attachment", "Attachment must have"),
    ],
)
async def test_invalid_sends_get_422(
    resend_server: LocalResend, change: dict[str, Any], name: str, message: str
) -> None:
    body = {k: v for k, v in (BODY | change).items() if v is not None}

    response = await post(resend_server, body)

    assert response.status_code == 422
    assert response.json()["name"] == name
    assert response.json()["message"].startswith(message)
    assert resend_server.deliveries == []


async def test_an_idempotency_key_over_256_characters_is_refused(
    resend_server: LocalResend,
) -> None:
    response = await post(resend_server, BODY, key="k" * 257)

    assert response.status_code == 400
    assert response.json()["name"] == "invalid_idempotency_key"


async def test_an_idempotency_key_expires_after_24_hours(resend_server: LocalResend) -> None:
    first = await post(resend_server, BODY, key="k")
    resend_server.advance(23 * 3600)
    within = await post(resend_server, BODY, key="k")
    resend_server.advance(3600)
    after = await post(resend_server, BODY, key="k")

    assert within.json() == first.json()
    assert after.json() != first.json()
    assert len(resend_server.deliveries) == 2


async def test_a_key_still_in_progress_gets_409(resend_server: LocalResend) -> None:
    resend_server.delay = 0.3

    async def shortly_after() -> httpx.Response:
        await asyncio.sleep(0.1)
        return await post(resend_server, BODY, key="k")

    first, second = await asyncio.gather(post(resend_server, BODY, key="k"), shortly_after())

    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 409]
    conflict = first if first.status_code == 409 else second
    assert conflict.json()["name"] == "concurrent_idempotent_requests"
    assert len(resend_server.deliveries) == 1


async def test_the_rate_limit_answers_429_with_retry_after(resend_server: LocalResend) -> None:
    resend_server.rate_limit = 1

    allowed = await post(resend_server, BODY)
    limited = await post(resend_server, BODY)

    assert allowed.headers["ratelimit-limit"] == "1"
    assert allowed.headers["ratelimit-remaining"] == "0"
    assert limited.status_code == 429
    assert limited.json()["name"] == "rate_limit_exceeded"
    assert 0 < float(limited.headers["retry-after"]) <= 1
    assert len(resend_server.deliveries) == 1


async def test_a_delivered_email_can_be_retrieved(resend_server: LocalResend) -> None:
    sent = await post(resend_server, BODY | {"cc": "carol@example.com"})
    email_id = sent.json()["id"]

    async with httpx.AsyncClient(
        base_url=resend_server.url, headers={"Authorization": f"Bearer {resend_server.api_key}"}
    ) as client:
        found = await client.get(f"/emails/{email_id}")
        missing = await client.get("/emails/nope")
        unknown = await client.get("/domains")

    assert found.json()["object"] == "email"
    assert found.json()["to"] == ["ada@example.com"]
    assert found.json()["cc"] == ["carol@example.com"]
    assert missing.status_code == 404
    assert unknown.json()["name"] == "not_found"


async def test_staged_failures_come_before_anything_else(resend_server: LocalResend) -> None:
    resend_server.fail_next(500, times=2)

    statuses = [(await post(resend_server, BODY)).status_code for _ in range(3)]

    assert statuses == [500, 500, 200]
    assert len(resend_server.requests) == 3
    assert len(resend_server.deliveries) == 1
