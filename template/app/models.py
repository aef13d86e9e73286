"""The service's own tables. Add models here, then ``alembic revision --autogenerate``."""

from datetime import datetime

from omnistack_core.db import Base
from sqlalchemy import DateTime, String, func
from sqlalchemy.orm import Mapped, mapped_column

ITEM_NAME_LENGTH = 200
OWNER_ID_LENGTH = 255
"""Room for the issuer's user id (a Supabase UUID, a Clerk ``user_...`` id)."""


class Item(Base):
    """An example of the service's own data, owned by the user who created it."""

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The creator's id at the issuer (the token's ``sub``); None for an item created where
    # nobody signs in, which is public.
    owner_id: Mapped[str | None] = mapped_column(String(OWNER_ID_LENGTH), index=True)
    name: Mapped[str] = mapped_column(String(ITEM_NAME_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
