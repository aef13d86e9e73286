"""Typed use of the caller's users-table row; mypy --strict checks this file, nothing runs it."""

from __future__ import annotations

from datetime import datetime

from fastapi import FastAPI

from omnistack_core import create_app
from omnistack_core.auth import AuthModule, CurrentUserRow, UserRecord

app: FastAPI = create_app(modules=[AuthModule()])


@app.get("/me")
async def me(user: CurrentUserRow) -> dict[str, str | None]:
    record: UserRecord = user
    since: datetime = record.created_at
    return {"id": record.id, "email": record.email, "since": since.isoformat()}
