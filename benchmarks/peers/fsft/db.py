"""The engine, made at import with SQLAlchemy's default pool, as the template makes it."""

from __future__ import annotations

from sqlmodel import create_engine

from benchmarks.peers.fsft.config import settings

engine = create_engine(str(settings.database_url))
