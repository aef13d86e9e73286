"""The service's shared Redis client, opened at start-up when ``REDIS_URL`` is set."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from pydantic import SecretStr
from starlette.applications import Starlette

from omnistack_core.errors import MissingDependencyError

if TYPE_CHECKING:
    from redis.asyncio import Redis


def require_redis_client() -> None:
    """Fail at start-up, not at the first command, when redis-py is missing.

    Raises:
        MissingDependencyError: ``REDIS_URL`` is set but the ``redis`` extra is not installed.
    """
    if importlib.util.find_spec("redis") is None:
        raise MissingDependencyError("redis_connection", "redis")


def open_redis(url: SecretStr, timeout: float) -> Redis:
    """A client for ``url`` whose commands fail fast instead of hanging.

    Args:
        url: ``REDIS_URL``.
        timeout: Seconds to connect and to wait for a reply.

    Returns:
        The client; close it with ``aclose()`` at shutdown.
    """
    from redis.asyncio import Redis  # noqa: PLC0415 - the redis extra is optional

    client: Redis = Redis.from_url(
        url.get_secret_value(),
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        health_check_interval=30,
    )
    return client


async def ping_redis(app: Starlette) -> None:
    """Readiness check: ``PING`` the shared client."""
    client: Redis = app.state.redis
    await client.ping()
