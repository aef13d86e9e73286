"""The worker waits for Redis at start-up, saying so in one line at a time.

arq connects ``conn_retries`` times (5, a second apart), then the worker exits; a platform
restarts it, again and again, for as long as Redis is down. The worker's settings make it try
without end instead, and its line per attempt becomes one clear line every
:data:`REDIS_WAIT_LOG_SECONDS`.
"""

from __future__ import annotations

import logging
import sys
import time

from arq.connections import RedisSettings

REDIS_WAIT_LOG_SECONDS = 10.0
"""While Redis is down at start-up the worker tries every second and says so this often."""


def waiting_redis_settings(url: str) -> RedisSettings:
    """The worker's connection settings: attempts without end, a second apart.

    Args:
        url: ``REDIS_URL``.
    """
    settings = RedisSettings.from_dsn(url)
    settings.conn_retries = sys.maxsize
    settings.conn_retry_delay = 1
    return settings


class RedisWaitLine(logging.Filter):
    """Turns arq's line per connection attempt into one clear line per interval.

    arq logs each failed attempt as "redis connection error host:port ..., N retries
    remaining..."; with attempts without end, that is a line a second with a meaningless
    count. The worker's settings are the only hook the ``arq`` command offers before it
    connects, so the line is reworded here, where arq logs it.

    Args:
        interval: Seconds between two lines while the attempts keep failing.
    """

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval = interval
        self._said_at = float("-inf")

    def filter(self, record: logging.LogRecord) -> bool:
        """Reword arq's attempt line, or drop it when one was said within the interval."""
        args = record.args if isinstance(record.args, tuple) else ()
        if not str(record.msg).startswith("redis connection error") or len(args) < 4:
            return True
        now = time.monotonic()
        if now - self._said_at < self.interval:
            return False
        self._said_at = now
        host, port, error_type, error = args[:4]
        record.msg = (
            "Waiting for Redis at %s:%s (%s: %s); the worker starts once it answers, "
            "trying every second"
        )
        record.args = (host, port, error_type, error)
        return True


def announce_redis_wait() -> None:
    """Install :class:`RedisWaitLine` on arq's connection logger (once)."""
    connections = logging.getLogger("arq.connections")
    if not any(isinstance(existing, RedisWaitLine) for existing in connections.filters):
        connections.addFilter(RedisWaitLine(REDIS_WAIT_LOG_SECONDS))
