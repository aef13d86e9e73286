"""Core settings: the variables of the service itself, validated once at start-up.

Values come from the environment and from a ``.env`` file in the working directory (the
environment wins; ``OMNISTACK_ENV_FILE`` names another file, or, empty, none: a service's
tests set it so the developer's ``.env`` never reaches them). Secrets are
:class:`~pydantic.SecretStr`, so they never show in a repr or a log line.
:func:`load_settings` turns every problem into one :class:`ConfigurationError` that names
each variable and what it expects, and never a secret's value.

Modules own their variables: each has a :class:`~omnistack_core.module_settings.ModuleSettings`
class of its own, and ``create_app`` composes the core's and the installed modules' classes
into one, so one error still lists every problem.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from pathlib import Path
from typing import Any, Literal, TypeVar, overload
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsError

from omnistack_core.database_url import DatabaseURLError, normalize_database_url
from omnistack_core.errors import ConfigProblem, ConfigurationError
from omnistack_core.module_settings import (
    LOCAL,
    OUTSIDE_DEVELOPMENT,
    ModuleSettings,
    UnmetRequirementError,
    required,
)

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

MIN_SECRET_KEY_LENGTH = 32
DEVELOPMENT_DATABASE_URL = "sqlite+aiosqlite:///./dev.db"


def _development_key() -> SecretStr:
    return SecretStr(secrets.token_urlsafe(48))


def _development_database() -> SecretStr:
    return SecretStr(DEVELOPMENT_DATABASE_URL)


class Settings(ModuleSettings):
    """The core's settings: the service, its database, Redis and observability.

    Field names are the variable names in lower case: ``secret_key`` reads ``SECRET_KEY``.
    """

    module = "core"

    service_name: str = Field(default="omnistack-api", min_length=1, max_length=100)
    """The service's name in logs, metrics and error reports (``SERVICE_NAME``)."""
    secret_key: SecretStr = SecretStr("")
    """Key for signing; at least 32 characters outside development. In development, when
    unset, a random key is made for the process."""
    port: int = Field(default=8000, ge=1, le=65535)
    """The port the start command binds (platforms set ``PORT``)."""
    max_request_body_bytes: int = Field(default=1_048_576, ge=1)
    """The largest request body accepted; larger ones get 413."""
    api_docs_enabled: bool | None = None
    """Serve ``/docs``, ``/redoc`` and ``/openapi.json``; by default in development and test
    only, since in staging and production they map the API for anyone who asks."""

    # The HTTP server (``omnistack serve``): the bounds a connection lives within
    server_max_header_bytes: int = Field(default=65_536, ge=1024, le=16_777_216)
    """The largest request line plus header a connection may send; larger ones get 431 and
    the connection is closed."""
    server_header_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)
    """Seconds from a request's first byte to the end of its header; then the connection is
    closed (a client sending its header slowly)."""
    server_body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    """Seconds from the end of a request's header to the end of its body; then the
    connection is closed (a slow body, or one shorter than its ``Content-Length``)."""
    server_keepalive_seconds: int = Field(default=5, ge=1, le=3600)
    """Seconds a connection may stay idle, before its first request or between requests."""
    server_max_connections: int = Field(default=500, ge=1, le=100_000)
    """Open connections (and requests in progress) per process; above it requests get 503."""
    shutdown_grace_seconds: int = Field(default=5, ge=0, le=3600)
    """Seconds requests in flight get to finish on SIGTERM before the server stops."""
    web_concurrency: int = Field(default=1, ge=1, le=64)
    """Worker processes ``omnistack serve`` runs in one container, each with its own copy of
    the app, database pool and ``SERVER_MAX_CONNECTIONS``; with more than one, the metrics
    endpoint sums them (Prometheus multiprocess mode). Render sets it on some runtimes."""
    forwarded_allow_ips: str = ""
    """Peers whose ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed: addresses or
    networks, comma-separated (``10.0.0.0/8,172.16.0.0/12``), or ``*`` for any. Empty (the
    default): none, so the client address is the TCP peer's. Set it to the platform proxy's
    addresses only."""
    forwarded_client_ip_header: str = Field(default="", pattern=r"^[A-Za-z0-9-]*$")
    """A header the trusted proxy sets to the client's address alone (``Fly-Client-IP`` on
    Fly.io), read instead of ``X-Forwarded-For``; empty: ``X-Forwarded-For``."""

    # Database
    database_url: SecretStr = SecretStr("")
    """The database, as the platform gives it (``postgres://``, ``postgresql://``,
    ``postgresql+asyncpg://``, ``sqlite+aiosqlite://``); stored normalised for SQLAlchemy.
    Required outside development; in development it defaults to SQLite in ``./dev.db``."""
    database_direct_url: SecretStr | None = None
    """A direct (not pooled) connection for migrations, which must not run through a
    transaction pooler such as PgBouncer or Supavisor. Defaults to ``DATABASE_URL``."""
    db_pool_size: int = Field(default=10, ge=1, le=1000)
    """Connections kept open per process (ignored with ``DB_USE_NULL_POOL``). Requests beyond
    it wait for one to be returned, rather than each open and close a connection of its own."""
    db_max_overflow: int = Field(default=0, ge=0, le=1000)
    """Connections opened beyond the pool size under load, closed when returned (each one a
    connection opened and closed per burst: keep it 0 unless bursts are rare and long)."""
    db_pool_timeout: float = Field(default=30.0, gt=0)
    """Seconds to wait for a pooled connection before failing the request."""
    db_pool_recycle: int = Field(default=1800, ge=-1)
    """Seconds after which a pooled connection is replaced (-1: never)."""
    db_pool_ping_idle_seconds: float = Field(default=10.0, ge=0)
    """A pooled connection idle at least this long is tested (three round trips) before a
    request gets it, so one the platform dropped while idle is replaced; 0 tests every one."""
    db_use_null_pool: bool = False
    """Open a connection per session and close it after, with prepared-statement caches off:
    for serverless poolers (PgBouncer / Supavisor in transaction mode, Neon)."""
    db_echo: bool = False
    """Log every SQL statement through the service's logging (development aid)."""

    # Redis and observability
    redis_url: SecretStr | None = None
    """Redis for background jobs and caching (``redis://``, ``rediss://``, ``unix://``)."""
    log_level: LogLevel = "INFO"
    """The lowest level logged: DEBUG, INFO, WARNING, ERROR or CRITICAL."""
    log_format: Literal["json", "text"] | None = None
    """``json`` (one object per line) or ``text``; by default text in development only."""
    metrics_enabled: bool | None = None
    """Serve Prometheus metrics; by default on when the observability extra is installed."""
    metrics_token: SecretStr | None = None
    """When set, ``GET /api/v1/public/metrics`` requires ``Authorization: Bearer <token>``."""
    sentry_dsn: SecretStr | None = None
    """Sentry project DSN; error reporting is off when unset."""
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Share of requests traced in Sentry, 0.0 to 1.0 (health and metrics probes never)."""
    health_check_timeout: float = Field(default=2.0, gt=0, le=60)
    """Seconds each built-in readiness check (database, Redis) may take."""
    health_cache_seconds: float = Field(default=1.0, ge=0, le=60)
    """Seconds a readiness result is reused, so a probe storm is not a database storm."""
    rate_limit_enabled: bool = True
    """Enforce the routes' rate limits (``RateLimit``); ``false`` turns every one off."""

    _core_secret_key_required = required(
        "secret_key",
        module="core",
        environments=OUTSIDE_DEVELOPMENT,
        default=_development_key,
        default_text="in development, a random key per process",
        hint=f"at least {MIN_SECRET_KEY_LENGTH} characters; generate one with: "
        "python -c 'import secrets; print(secrets.token_urlsafe(48))'",
    )
    _core_database_url_required = required(
        "database_url",
        module="core",
        environments=OUTSIDE_DEVELOPMENT,
        default=_development_database,
        default_text=f"in development, {DEVELOPMENT_DATABASE_URL}",
        hint="the database's URL (postgres://...)",
    )

    @property
    def is_development(self) -> bool:
        """Whether ``ENVIRONMENT`` is development."""
        return self.environment == "development"

    @property
    def serves_api_docs(self) -> bool:
        """Whether the API docs are served: ``API_DOCS_ENABLED``, else in development and test."""
        if self.api_docs_enabled is not None:
            return self.api_docs_enabled
        return self.environment in ("development", "test")

    @property
    def logs_as_json(self) -> bool:
        """Whether log lines are JSON: ``LOG_FORMAT``, else everywhere but development."""
        return self.log_format == "json" or (self.log_format is None and not self.is_development)

    @property
    def migration_database_url(self) -> SecretStr:
        """The URL migrations use: ``DATABASE_DIRECT_URL`` when set, else ``DATABASE_URL``."""
        return self.database_direct_url or self.database_url

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level_in_upper_case(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("secret_key")
    @classmethod
    def _secret_key_length(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        environment = info.data.get("environment")
        key = value.get_secret_value()
        if key and environment not in ("development", None) and len(key) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(
                f"must be at least {MIN_SECRET_KEY_LENGTH} characters when "
                f"ENVIRONMENT={environment}; generate one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return value

    @field_validator("database_url", "database_direct_url", mode="before")
    @classmethod
    def _normalize_database_url(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not value:  # unset: the requirement decides
            return "" if info.field_name == "database_url" else None
        return _normalized(value)

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_url_scheme(cls, value: Any) -> Any:
        return redis_url_scheme(value)

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _trusted_peers(cls, value: str) -> str:
        # uvicorn takes a malformed entry for a literal host name and silently trusts nobody.
        for peer in (entry.strip() for entry in value.split(",")):
            if not peer or peer == "*":
                continue
            try:
                ipaddress.ip_network(peer, strict=False)
            except ValueError:
                raise ValueError(
                    f"{peer!r} is not an IP address or network: give addresses or networks, "
                    "comma-separated (10.0.0.0/8,fc00::/7), or * for any peer"
                ) from None
        return value

    @field_validator("sentry_dsn")
    @classmethod
    def _sentry_dsn_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                parts = urlsplit(value.get_secret_value())
            except ValueError:
                parts = None
            project = parts.path.rstrip("/").rpartition("/")[2] if parts else ""
            if (
                not parts
                or parts.scheme not in ("http", "https")
                or not parts.username
                or not parts.hostname
                or not project.isdigit()
            ):
                raise ValueError("must look like https://<public key>@<host>/<project id>")
        return value


def redis_url_scheme(value: Any) -> Any:
    """``value`` when it is a Redis URL (or unset); the core and the jobs module check it.

    Raises:
        ValueError: It has another scheme.
    """
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if text and not str(text).startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must start with redis://, rediss:// or unix://")
    return value


def require_https(value: str, environment: object) -> str:
    """``value`` if it is an https:// URL, or an http:// one in development and test.

    Raises:
        ValueError: For anything else; module settings validators use it too.
    """
    local = environment in LOCAL
    if not value.startswith("https://") and not (local and value.startswith("http://")):
        raise ValueError("must be an https:// URL (http:// only in development and test)")
    return value


def _normalized(value: Any) -> str:
    try:
        return normalize_database_url(str(value))
    except DatabaseURLError as exc:
        raise ValueError(str(exc)) from None


SettingsT = TypeVar("SettingsT", bound=ModuleSettings)


@overload
def load_settings(
    *, env_file: str | Path | None = ..., env_prefix: str = ..., **values: Any
) -> Settings: ...
@overload
def load_settings(
    settings_class: type[SettingsT],
    *,
    env_file: str | Path | None = ...,
    env_prefix: str = ...,
    **values: Any,
) -> SettingsT: ...
def load_settings(
    settings_class: type[ModuleSettings] = Settings,
    *,
    env_file: str | Path | None = ".env",
    env_prefix: str = "",
    **values: Any,
) -> ModuleSettings:
    """Load and validate settings, reporting every problem at once.

    Args:
        settings_class: The class to load: :class:`Settings`, a module's settings class, or
            a class composing several.
        env_file: The dotenv file to read besides the environment; ``None`` for none.
        env_prefix: Read ``<env_prefix>NAME`` instead of ``NAME`` (an app embedding modules
            whose names would clash with its own: ``OMNISTACK_``).
        **values: Values that take precedence over the environment (field names).

    Returns:
        The validated settings.

    Raises:
        ConfigurationError: Listing each invalid variable and what it expects.
    """
    if env_file == DEFAULT_ENV_FILE:
        env_file = default_env_file()
    try:
        return settings_class(_env_file=env_file, _env_prefix=env_prefix, **values)
    except ValidationError as exc:
        raise ConfigurationError(_problems(settings_class, exc, env_prefix)) from None
    except SettingsError as exc:
        raise ConfigurationError([_decoding_problem(settings_class, exc, env_prefix)]) from None


DEFAULT_ENV_FILE = ".env"

ENV_FILE_VARIABLE = "OMNISTACK_ENV_FILE"
"""Names the dotenv file read in place of ``.env``; empty, no file is read."""


def default_env_file() -> str | None:
    """The dotenv file settings read besides the environment.

    Returns:
        ``.env``, unless ``OMNISTACK_ENV_FILE`` names another; None when it is empty.
    """
    chosen = os.environ.get(ENV_FILE_VARIABLE)
    if chosen is None:
        return DEFAULT_ENV_FILE
    return chosen or None


def variable_name(settings_class: type[BaseSettings], field: str, env_prefix: str = "") -> str:
    """The environment variable that sets ``field`` of ``settings_class``."""
    info = settings_class.model_fields.get(field)
    alias = info.validation_alias if info else None
    return alias if isinstance(alias, str) else f"{env_prefix}{field.upper()}"


def _problems(
    settings_class: type[BaseSettings], exc: ValidationError, env_prefix: str
) -> list[ConfigProblem]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, UnmetRequirementError):
            message = cause.message(env_prefix)
        else:
            message = error["msg"].removeprefix("Value error, ")
        problems.append(ConfigProblem(variable_name(settings_class, field, env_prefix), message))
    return problems


def _decoding_problem(
    settings_class: type[BaseSettings], exc: SettingsError, env_prefix: str
) -> ConfigProblem:
    # pydantic-settings names the field whose value is not valid JSON, never the value.
    match = re.search(r"field [\"']?(\w+)", str(exc))
    if match is None:
        return ConfigProblem("environment", str(exc))
    variable = variable_name(settings_class, match.group(1), env_prefix)
    return ConfigProblem(variable, "must be valid JSON")


def secret_values(settings: BaseSettings) -> list[str]:
    """Every secret value in ``settings``, for masking in error texts.

    Args:
        settings: Loaded settings.

    Returns:
        The values of all :class:`~pydantic.SecretStr` fields that are set.
    """
    values = []
    for field in settings.__dict__.values():
        if isinstance(field, SecretStr) and (value := field.get_secret_value()):
            values.append(value)
            # A driver may quote a URL's password on its own, decoded.
            password = _url_password(value)
            if password:
                values.append(password)
    return values


def _url_password(value: str) -> str | None:
    try:
        password = urlsplit(value).password
    except ValueError:
        return None
    return unquote(password) if password else None
