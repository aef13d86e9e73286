"""Example routes over the service's own table."""

from datetime import datetime

from fastapi import APIRouter
from omnistack_core import ProblemError
from omnistack_core.db import DbSession
from pydantic import BaseModel, Field

from app.models import Item

router = APIRouter(prefix="/items", tags=["items"])


class ItemIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class ItemOut(BaseModel):
    id: int
    name: str
    created_at: datetime


@router.post("", status_code=201)
async def create_item(item: ItemIn, session: DbSession) -> ItemOut:
    """Store an item."""
    row = Item(name=item.name)
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return ItemOut(id=row.id, name=row.name, created_at=row.created_at)


@router.get("/{item_id}")
async def read_item(item_id: int, session: DbSession) -> ItemOut:
    """One item, or a problem+json 404."""
    row = await session.get(Item, item_id)
    if row is None:
        raise ProblemError(404, f"No item {item_id}.")
    return ItemOut(id=row.id, name=row.name, created_at=row.created_at)
