"""Which failures are worth retrying, and how long to wait before the next attempt.

arq retries only its own ``Retry`` exception; services raise ordinary exceptions. Transient
ones (the network, a timeout, a 429 or 5xx from a provider, a dropped database connection)
are retried with exponential backoff and jitter; anything else fails the job at once, since
running the same code on the same input again would fail the same way.
"""

from __future__ import annotations

import random

from omnistack_core.jobs.errors import TransientError

_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure worth retrying."""
    if isinstance(exc, TransientError | ConnectionError | TimeoutError):
        return True
    module = type(exc).__module__.split(".")[0]
    if module == "httpx":
        response = getattr(exc, "response", None)
        if response is not None:  # an HTTPStatusError: worth it for 429 and 5xx only
            return getattr(response, "status_code", 0) in _TRANSIENT_STATUS
        return type(exc).__name__ not in ("InvalidURL", "UnsupportedProtocol")
    if module == "redis":
        return type(exc).__name__ in ("ConnectionError", "TimeoutError", "BusyLoadingError")
    if module == "sqlalchemy":
        # A connection the database dropped; a constraint violation is not transient.
        return bool(getattr(exc, "connection_invalidated", False))
    return False


def retry_delay(
    attempt: int, *, base: float, maximum: float, retry_after: float | None = None
) -> float:
    """Seconds to wait after failed ``attempt`` (1-based): doubling, capped, jittered.

    The jitter spreads retries of many jobs that failed together (a provider outage), so they
    do not all come back at once; ``retry_after`` is a floor the other side asked for.
    """
    ceiling = min(maximum, base * 2 ** (attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - spreading load, not a secret
    return max(delay, retry_after or 0.0)
