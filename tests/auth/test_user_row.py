"""CurrentUserRow: the caller's row of the users table, end to end through a FastAPI app."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import delete, update

from omnistack_core import load_settings
from omnistack_core.auth import CurrentUserRow, Principal, users
from omnistack_core.auth.users import UserMirror
from omnistack_core.db import Database
from omnistack_core.testing import app_client
from omnistack_core.testing.issuer import LocalIssuer
from tests.auth.auth_apps import auth_app, bearer, supabase_settings
from tests.db.test_database import backend_pid, terminate


def row_app(issuer: LocalIssuer, **settings: Any) -> FastAPI:
    app = auth_app(**supabase_settings(issuer, **settings))

    @app.get("/row")
    async def row(user: CurrentUserRow) -> dict[str, Any]:
        return {
            "id": user.id,
            "email": user.email,
            "created_at": user.created_at.isoformat(),
            "last_seen_at": user.last_seen_at.isoformat(),
        }

    return app


async def create_users_table(app: FastAPI) -> None:
    async with app.state.database.engine.begin() as connection:
        await connection.run_sync(users.metadata.create_all)


async def test_a_new_users_first_request_answers_with_the_row_it_wrote(
    local_issuer: LocalIssuer,
) -> None:
    app = row_app(local_issuer)
    token = local_issuer.supabase_token("newcomer", email="new@example.com")

    async with app_client(app) as client:
        await create_users_table(app)
        response = await client.get("/row", headers=bearer(token))

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["email"]) == ("newcomer", "new@example.com")
    assert body["created_at"] == body["last_seen_at"]
    assert body["created_at"].endswith("+00:00")


async def test_a_later_request_reads_what_the_row_holds_now(local_issuer: LocalIssuer) -> None:
    app = row_app(local_issuer, auth_user_sync_seconds=3600)
    token = local_issuer.supabase_token("reader", email="old@example.com")

    async with app_client(app) as client:
        await create_users_table(app)
        await client.get("/row", headers=bearer(token))
        async with app.state.database.session() as session:
            await session.execute(
                update(users).where(users.c.id == "reader").values(email="changed@example.com")
            )
        response = await client.get("/row", headers=bearer(token))

    # Inside the interval the mirror writes nothing: the answer is the row as it is now.
    assert response.json()["email"] == "changed@example.com"


async def test_a_user_whose_row_is_gone_gets_one_written_again(local_issuer: LocalIssuer) -> None:
    app = row_app(local_issuer, auth_user_sync_seconds=3600)
    token = local_issuer.supabase_token("deleted", email="gone@example.com")

    async with app_client(app) as client:
        await create_users_table(app)
        await client.get("/row", headers=bearer(token))
        async with app.state.database.session() as session:
            await session.execute(delete(users).where(users.c.id == "deleted"))
        response = await client.get("/row", headers=bearer(token))
        async with app.state.database.session() as session:
            count = len((await session.execute(users.select())).all())

    assert response.status_code == 200
    assert response.json()["email"] == "gone@example.com"
    assert count == 1


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}])
async def test_without_a_valid_token_the_row_is_401(
    local_issuer: LocalIssuer, headers: dict[str, str]
) -> None:
    async with app_client(row_app(local_issuer)) as client:
        response = await client.get("/row", headers=headers)

    assert response.status_code == 401


@pytest.mark.integration
async def test_a_read_on_a_connection_killed_while_idle_is_read_again(postgres_url: str) -> None:
    # Never pinged before use: the killed connection is handed out as it is.
    settings = load_settings(
        database_url=postgres_url, db_pool_size=1, db_pool_ping_idle_seconds=3600
    )
    database = Database.from_settings(settings)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(users.metadata.create_all)
        mirror = UserMirror(users, database, interval=3600)
        principal = Principal(id="survivor", provider="supabase", email="s@example.com")
        await mirror.record(principal)
        await terminate(postgres_url, await backend_pid(database))

        row = await mirror.row_of(principal)
        replacement = await backend_pid(database)
    finally:
        await database.dispose()

    assert (row.id, row.email) == ("survivor", "s@example.com")
    assert replacement != 0
