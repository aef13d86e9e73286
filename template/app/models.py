"""The service's own tables. Add models here, then ``alembic revision --autogenerate``."""

from datetime import datetime

from omnistack_core.db import Base
from sqlalchemy import DateTime, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

ITEM_NAME_LENGTH = 200
OWNER_ID_LENGTH = 255
"""Room for the issuer's user id (a Supabase UUID, a Clerk ``user_...`` id)."""


class Item(Base):
    """An example of the service's own data, owned by the user who created it."""

    __tablename__ = "items"
    # A user's items, newest first, a page at a time (WHERE owner_id = ? AND id < ? ORDER
    # BY id DESC): the index holds them in that order, so a page reads only its own rows.
    __table_args__ = (Index("ix_items_owner_id_id", "owner_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The creator's id at the issuer (the token's ``sub``); None for an item created where
    # nobody signs in, which is public.
    owner_id: Mapped[str | None] = mapped_column(String(OWNER_ID_LENGTH))
    name: Mapped[str] = mapped_column(String(ITEM_NAME_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
