"""The app's own tables: its ``users`` and the notes people write."""

from datetime import datetime

from sqlalchemy import DateTime, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """The app's declarative base; its metadata is what the app's Alembic migrates."""


class User(Base):
    """Someone the app knew before it had sign-in: its own ``users`` table, kept as it is."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(100))


class Note(Base):
    """A note, written by a signed-in user."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[str] = mapped_column(String(255), index=True)
    """The token's subject: the user's id at the auth provider."""
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
