"""The input types refuse, with a 422, exactly what the databases would refuse with a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import DateTime, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from omnistack_core import ProblemError, create_app, load_settings
from omnistack_core.db import Database, DbSession
from omnistack_core.testing import app_client
from omnistack_core.validation import INT32_MAX, RowId, StorableStr, UtcDateTime


class Model(DeclarativeBase):
    pass


class Label(Model):
    __tablename__ = "labels"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LabelIn(BaseModel):
    text: StorableStr = Field(min_length=1, max_length=20)


class LabelOut(BaseModel):
    id: int
    text: str
    created_at: UtcDateTime


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FastAPI]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/test.db"
    else:
        url = request.getfixturevalue("postgres_url")
    database = Database.from_settings(load_settings(database_url=url))
    async with database.engine.begin() as connection:
        await connection.run_sync(Model.metadata.create_all)
    await database.dispose()

    app = create_app(load_settings(database_url=url))

    @app.post("/labels", status_code=201)
    async def add_label(label: LabelIn, session: DbSession) -> LabelOut:
        row = Label(text=label.text)
        session.add(row)
        await session.flush()
        await session.refresh(row)
        return LabelOut(id=row.id, text=row.text, created_at=row.created_at)

    @app.get("/labels/{label_id}")
    async def read_label(label_id: RowId, session: DbSession) -> LabelOut:
        row = await session.get(Label, label_id)
        if row is None:
            raise ProblemError(404, f"No label {label_id}.")
        return LabelOut(id=row.id, text=row.text, created_at=row.created_at)

    yield app

    database = Database.from_settings(load_settings(database_url=url))
    async with database.engine.begin() as connection:
        await connection.run_sync(Model.metadata.drop_all)
    await database.dispose()


@pytest.mark.parametrize("label_id", [str(INT32_MAX + 1), str(2**63), "0", "-1"])
async def test_an_id_outside_the_column_type_is_a_422(app: FastAPI, label_id: str) -> None:
    async with app_client(app) as client:
        response = await client.get(f"/labels/{label_id}")

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == ["path", "label_id"]


async def test_the_largest_id_the_column_holds_is_looked_up(app: FastAPI) -> None:
    async with app_client(app) as client:
        response = await client.get(f"/labels/{INT32_MAX}")

    assert response.status_code == 404


@pytest.mark.parametrize("text", ["a\u0000b", "\u0000"])
async def test_a_nul_character_is_a_422_and_nothing_is_written(app: FastAPI, text: str) -> None:
    async with app_client(app) as client:
        refused = await client.post("/labels", json={"text": text})
        stored = await client.post("/labels", json={"text": "kept"})

    assert refused.status_code == 422
    assert "NUL" in refused.json()["errors"][0]["message"]
    assert stored.json()["id"] == 1


async def test_a_lone_surrogate_is_a_422(app: FastAPI) -> None:
    async with app_client(app) as client:
        response = await client.post(
            "/labels",
            content=b'{"text": "a\\ud800"}',
            headers={"content-type": "application/json"},
        )

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "text"]


async def test_timestamps_carry_their_utc_offset_on_every_database(app: FastAPI) -> None:
    async with app_client(app) as client:
        created = (await client.post("/labels", json={"text": "dated"})).json()

    assert created["created_at"].endswith("+00:00")
    assert datetime.fromisoformat(created["created_at"]).utcoffset() is not None


def test_text_built_in_code_is_checked_too() -> None:
    with pytest.raises(ValidationError, match="NUL"):
        LabelIn(text="a\x00")


def test_the_openapi_document_states_the_bounds(app: FastAPI) -> None:
    parameter = app.openapi()["paths"]["/labels/{label_id}"]["get"]["parameters"][0]

    assert parameter["schema"]["minimum"] == 1
    assert parameter["schema"]["maximum"] == INT32_MAX


def test_the_openapi_document_types_timestamps_as_date_time(app: FastAPI) -> None:
    schema = app.openapi()["components"]["schemas"]["LabelOut"]["properties"]["created_at"]

    assert schema == {"type": "string", "format": "date-time", "title": "Created At"}
