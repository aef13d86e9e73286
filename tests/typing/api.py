"""Typed use of the public API; mypy --strict checks this file, nothing runs it."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI
from sqlalchemy import MetaData, select
from sqlalchemy.orm import Mapped, mapped_column
from starlette.applications import Starlette

from omnistack_core import Module, ProblemError, Settings, create_app, load_settings
from omnistack_core.db import Base, Database, DbSession
from omnistack_core.health import HealthCheck, register_check


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class ShopSettings(Settings):
    currency: str = "EUR"


router = APIRouter(prefix="/items")


@router.get("/{item_id}")
async def read_item(item_id: int, session: DbSession) -> dict[str, str]:
    item = await session.scalar(select(Item).where(Item.id == item_id))
    if item is None:
        raise ProblemError(404, f"No item {item_id}.")
    return {"name": item.name}


async def warehouse_answers(app: Starlette) -> None:
    database: Database = app.state.database
    await database.ping()


class Shop(Module):
    name = "shop"
    settings_class = ShopSettings

    def routers(self, settings: Settings) -> Sequence[APIRouter]:
        return [router]

    def health_checks(self, settings: Settings) -> Sequence[HealthCheck]:
        return [HealthCheck("warehouse", warehouse_answers, timeout=1.0, critical=False)]

    def metadata(self) -> Sequence[MetaData]:
        return [Base.metadata]


settings: ShopSettings = load_settings(ShopSettings, env_file=None)
currency: str = settings.currency
app: FastAPI = create_app(settings, modules=[Shop()])
register_check(app, HealthCheck("extra", warehouse_answers))
