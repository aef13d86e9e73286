"""The app's own settings, as it had them before it adopted any OmniStack module."""

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class AppSettings(BaseSettings):
    """Read from the environment and ``.env``, under the app's own names."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/notes"
    """The app's PostgreSQL database, as SQLAlchemy's async URL."""
    db_pool_size: int = 5
    """Connections the app's engine keeps open."""
    environment: Literal["local", "staging", "prod"] = "local"
    """The app's own names for where it runs; ``prod`` turns the interactive docs off."""
