"""Signing up: the account, and the welcome email sent by a job."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from examples.saas.tables import accounts
from examples.saas.tests.service import SECRET_KEY, Service
from omnistack_core.auth import mint_dev_token


async def test_signing_up_saves_the_account_and_welcomes_by_email_once(service: Service) -> None:
    user_id, user = service.new_user()

    created = await service.client.put("/api/v1/account", json={"name": "Ada"}, headers=user)
    renamed = await service.client.put(
        "/api/v1/account", json={"name": "Ada Lovelace"}, headers=user
    )
    await service.jobs_done()
    account = await service.client.get("/api/v1/account", headers=user)

    assert created.json() == {"id": user_id, "name": "Ada", "email": f"{user_id}@example.com"}
    assert renamed.status_code == 200
    assert account.json() == {
        "id": user_id,
        "name": "Ada Lovelace",
        "email": f"{user_id}@example.com",
        "plan": None,
        "ai_usage": None,
    }
    (welcome,) = service.resend.deliveries
    assert welcome.to == [f"{user_id}@example.com"]
    assert welcome.payload["from"] == "Summarizer <hello@summarizer.example.com>"
    assert welcome.payload["subject"] == "Welcome to Summarizer"
    assert "Hi Ada," in welcome.payload["text"]
    assert welcome.idempotency_key == f"welcome/{user_id}"


async def test_a_user_without_an_email_address_gets_an_account_and_no_email(
    service: Service,
) -> None:
    user_id = "user-without-email-" + uuid.uuid4().hex[:8]
    user = {"Authorization": f"Bearer {mint_dev_token(SECRET_KEY, user_id)}"}

    response = await service.client.put("/api/v1/account", json={"name": "Anon"}, headers=user)
    await service.jobs_done()
    async with service.app.state.database.session() as session:
        saved = await session.scalar(select(accounts.c.name).where(accounts.c.user_id == user_id))

    assert response.json() == {"id": user_id, "name": "Anon", "email": None}
    assert saved == "Anon"
    assert service.resend.deliveries == []


async def test_an_account_is_read_only_after_signing_up(service: Service) -> None:
    _, user = service.new_user()

    missing = await service.client.get("/api/v1/account", headers=user)
    anonymous = await service.client.get("/api/v1/account")

    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert "PUT /api/v1/account" in missing.json()["detail"]
    assert anonymous.status_code == 401
