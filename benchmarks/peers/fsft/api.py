"""The template's routes the benchmark calls, under ``/api/v1``, and the app that serves them.

Route functions are plain ``def`` as in the template, so FastAPI runs each in its thread pool;
each returns ``Any`` and lets its ``response_model`` validate and serialise the answer.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.routing import APIRoute
from sqlmodel import col, func, select
from starlette.middleware.cors import CORSMiddleware

from benchmarks.peers.fsft.config import settings
from benchmarks.peers.fsft.deps import CurrentUser, SessionDep
from benchmarks.peers.fsft.models import Item, ItemCreate, ItemPublic, ItemsPublic, UserPublic

utils_router = APIRouter(prefix="/utils", tags=["utils"])
users_router = APIRouter(prefix="/users", tags=["users"])
items_router = APIRouter(prefix="/items", tags=["items"])


@utils_router.get("/health-check/")
async def health_check() -> bool:
    return True


@users_router.get("/me", response_model=UserPublic)
def read_user_me(current_user: CurrentUser) -> Any:
    return current_user


@items_router.get("/", response_model=ItemsPublic)
def read_items(
    session: SessionDep, current_user: CurrentUser, skip: int = 0, limit: int = 100
) -> Any:
    """The caller's items (everyone's for a superuser), newest first: a count, then one page."""
    if current_user.is_superuser:
        count = session.exec(select(func.count()).select_from(Item)).one()
        page = select(Item)
    else:
        owned = Item.owner_id == current_user.id
        count = session.exec(select(func.count()).select_from(Item).where(owned)).one()
        page = select(Item).where(owned)
    items = session.exec(page.order_by(col(Item.created_at).desc()).offset(skip).limit(limit)).all()
    return ItemsPublic(data=items, count=count)  # type: ignore[arg-type]  # validated as rows


@items_router.get("/{id}", response_model=ItemPublic)
def read_item(session: SessionDep, current_user: CurrentUser, id: uuid.UUID) -> Any:  # noqa: A002
    item = session.get(Item, id)
    if item is None:
        raise HTTPException(status_code=404, detail="Item not found")
    if not current_user.is_superuser and item.owner_id != current_user.id:
        raise HTTPException(status_code=400, detail="Not enough permissions")
    return item


@items_router.post("/", response_model=ItemPublic)
def create_item(*, session: SessionDep, current_user: CurrentUser, item_in: ItemCreate) -> Any:
    item = Item.model_validate(item_in, update={"owner_id": current_user.id})
    session.add(item)
    session.commit()
    session.refresh(item)
    return item


api_router = APIRouter()
for router in (utils_router, users_router, items_router):
    api_router.include_router(router)


def operation_id(route: APIRoute) -> str:
    return f"{route.tags[0]}-{route.name}"


def create_app() -> FastAPI:
    """The app as the template builds it: OpenAPI under the API prefix, CORS, the routers."""
    app = FastAPI(
        title=settings.project_name,
        openapi_url=f"{settings.api_v1_str}/openapi.json",
        generate_unique_id_function=operation_id,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[settings.frontend_host],
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    app.include_router(api_router, prefix=settings.api_v1_str)
    return app
