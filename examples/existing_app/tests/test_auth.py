"""Sign-in: the app's own error format, and users recorded beside the app's own table."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from examples.existing_app.models import User
from examples.existing_app.tests.notes_app import Notes
from omnistack_core.auth import AuthModule


async def test_a_request_without_a_token_is_401_in_the_apps_own_format(notes: Notes) -> None:
    response = await notes.client.get("/notes")

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": "Authentication required."}


async def test_a_token_of_another_issuer_is_401_in_the_apps_own_format(notes: Notes) -> None:
    forged = notes.issuer.supabase_token("user-mallory", iss="https://elsewhere.example.com")

    response = await notes.client.get("/notes", headers={"Authorization": f"Bearer {forged}"})

    assert response.status_code == 401
    assert response.json() == {"detail": "The access token is not valid."}


async def test_the_apps_own_errors_keep_their_format(notes: Notes) -> None:
    response = await notes.client.get("/users/999999")

    assert response.status_code == 404
    assert response.json() == {"detail": "No user 999999."}


async def test_a_signed_in_user_is_recorded_in_omnistack_users_and_the_apps_users_stay_as_they_are(
    notes: Notes,
) -> None:
    email = f"grace-{uuid.uuid4().hex[:8]}@example.com"
    async with notes.session() as session:
        own = User(email=email, name="Grace")
        session.add(own)
        await session.commit()
        before = [(u.id, u.email, u.name) for u in await session.scalars(select(User))]
    user_id = f"user-{uuid.uuid4().hex[:12]}"

    written = await notes.client.post(
        "/notes", json={"text": "Buy milk."}, headers=notes.headers(user_id)
    )
    listed = await notes.client.get("/notes", headers=notes.headers(user_id))

    assert written.status_code == 201, written.text
    assert listed.json() == [{"id": written.json()["id"], "text": "Buy milk."}]
    recorded = AuthModule.of(notes.app).users
    assert recorded is not None
    assert recorded.table.name == "omnistack_users"
    async with notes.session() as session:
        row = (
            await session.execute(select(recorded.table).where(recorded.table.c.id == user_id))
        ).one()
        after = [(u.id, u.email, u.name) for u in await session.scalars(select(User))]
    assert (row.provider, row.email) == ("supabase", f"{user_id}@example.com")
    assert after == before
    assert (own.id, own.email, own.name) in after
