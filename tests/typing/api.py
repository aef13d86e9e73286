"""Typed use of the public API; mypy --strict checks this file, nothing runs it."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI
from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Mapped, mapped_column
from starlette.applications import Starlette

from omnistack_core import (
    Installation,
    Module,
    ModuleSettings,
    ProblemError,
    Settings,
    create_app,
    install,
    load_settings,
    required,
)
from omnistack_core.db import Base, Database, DbReadSession, DbSession
from omnistack_core.health import HealthCheck, ReadinessReport, readiness_report, register_check


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class ShopSettings(ModuleSettings):
    module = "shop"

    currency: str = "EUR"
    warehouse_url: str | None = None

    _shop_warehouse_url_required = required(
        "warehouse_url", module="shop", environments=("production",)
    )


class ServiceSettings(Settings, ShopSettings):
    """The core's settings and the shop's, validated together."""


router = APIRouter(prefix="/items")


@router.get("/{item_id}")
async def read_item(item_id: int, session: DbSession) -> dict[str, str]:
    item = await session.scalar(select(Item).where(Item.id == item_id))
    if item is None:
        raise ProblemError(404, f"No item {item_id}.")
    return {"name": item.name}


@router.get("")
async def list_names(session: DbReadSession) -> list[str]:
    return list(await session.scalars(select(Item.name).order_by(Item.id.desc()).limit(10)))


async def warehouse_answers(app: Starlette) -> None:
    database: Database = app.state.database
    await database.ping()


class Shop(Module[ShopSettings]):
    name = "shop"
    settings_class = ShopSettings

    def routers(self, settings: ShopSettings) -> Sequence[APIRouter]:
        return [router]

    def health_checks(self, settings: ShopSettings) -> Sequence[HealthCheck]:
        currency: str = settings.currency
        return [HealthCheck(f"warehouse-{currency}", warehouse_answers, critical=False)]

    def metadata(self) -> Sequence[MetaData]:
        return [Base.metadata]


settings: ServiceSettings = load_settings(ServiceSettings, env_file=None)
currency: str = settings.currency
app: FastAPI = create_app(settings, modules=[Shop()])
register_check(app, HealthCheck("extra", warehouse_answers))

existing = FastAPI()
shop_settings: ShopSettings = load_settings(ShopSettings, env_prefix="SHOP_")
engine = create_async_engine("sqlite+aiosqlite:///./shop.db")
installed: Installation = install(existing, [Shop()], settings=shop_settings, database=engine)


async def ready(app: Starlette) -> tuple[int, dict[str, object]]:
    report: ReadinessReport = await readiness_report(app)
    return (200 if report.ready else 503), report.as_dict()
