"""The service's own tables. Add models here, then ``alembic revision --autogenerate``."""

from datetime import datetime

from omnistack_core.db import Base
from sqlalchemy import DateTime, String, func
from sqlalchemy.orm import Mapped, mapped_column


class Item(Base):
    """An example of the service's own data."""

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
