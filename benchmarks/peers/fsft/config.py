"""Settings, read from the environment once, at import, as the template reads its own."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """What the peer reads: ``PEER_DATABASE_URL`` and ``PEER_SECRET_KEY`` are required."""

    model_config = SettingsConfigDict(env_prefix="PEER_", env_ignore_empty=True, extra="ignore")

    database_url: str
    """A ``postgresql+psycopg://`` URL, as the template builds from its ``POSTGRES_*`` values."""
    secret_key: str
    """The HS256 key tokens are signed and checked with."""
    api_v1_str: str = "/api/v1"
    project_name: str = "full-stack-fastapi-template peer"
    # The template adds its frontend's address to the CORS origins, so its CORS middleware is
    # always installed; the peer keeps that address for the same reason.
    frontend_host: str = "http://localhost:5173"
    access_token_expire_minutes: int = 60 * 24 * 8


settings = Settings()
