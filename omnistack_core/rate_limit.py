"""Rate limits on routes: a FastAPI dependency, shared by every instance through Redis.

``RateLimit`` admits at most ``count`` requests per caller in any ``window``; the next one
gets a problem+json 429 with ``Retry-After`` (seconds)::

    @router.post("/welcome", dependencies=[Depends(RateLimit("10/hour", name="welcome"))])
    async def send_welcome(...): ...


    # or read from a setting, so operators can change it without a release
    chat_limit = RateLimit(setting="ai_rate_limit", name="ai")

**The window slides.** Each key keeps the times of its admitted requests in the window (a
Redis sorted set, or a deque in process); a request is admitted while fewer than ``count``
remain. A fixed window (one counter per minute) lets a caller spend ``count`` at the end of
one window and ``count`` again at the start of the next, twice the limit within seconds:
for "10 emails an hour" that is the difference that matters. The price is memory in
proportion to ``count`` per active key, which suits the per-user limits it is meant for.

**The key** is the signed-in user when the request carries a valid token (the auth module
tells the limiter who it is, and the route's own ``CurrentUser`` reuses that verification),
else the client address. The address is ``request.client.host``: the server sets it from
``X-Forwarded-For`` only for the proxies it trusts (uvicorn's forwarded-allow-ips); the
limiter never reads that header itself, since any caller can write it.

**Where the counts live.** With ``REDIS_URL`` set, in Redis, one atomic script per request, on
Redis's clock, so every instance shares them; without it (development), in this process.
When Redis does not answer, the limiter falls back to this process's counts and logs it (once
a minute): requests keep their limit per instance instead of failing with the outage.
``RATE_LIMIT_ENABLED=false`` turns every limit off.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator
from starlette.requests import Request

from omnistack_core.errors import ModuleNotRunningError, ProblemError
from omnistack_core.installation import Installation
from omnistack_core.openapi import declare_problems

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "CallerSubject",
    "Rate",
    "RateLimit",
    "RateText",
    "by_address",
    "by_user_or_address",
    "parse_rate",
]

logger = logging.getLogger("omnistack.rate_limit")

SUBJECT_RESOURCE = "auth.subject"
"""The name under which the auth module provides its :class:`CallerSubject`."""

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?\s*$")
MAX_COUNT = 100_000
"""The largest count a rate may allow in one window."""
# Beyond this many keys the in-process windows drop the ones that emptied.
_MEMORY_SWEEP_AT = 10_000
_FALLBACK_LOG_SECONDS = 60.0

KeyFunction = Callable[[Request], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``count`` requests in any ``seconds``."""

    count: int
    seconds: int

    def __str__(self) -> str:
        every, unit = _largest_unit(self.seconds)
        return f"{self.count}/{'' if every == 1 else every}{unit}"


def _largest_unit(seconds: int) -> tuple[int, str]:
    """``seconds`` as a whole number of the largest unit dividing it: ``(2, "minute")``."""
    unit = next(name for name, size in reversed(_UNITS.items()) if seconds % size == 0)
    return seconds // _UNITS[unit], unit


@lru_cache(maxsize=64)
def parse_rate(text: str) -> Rate:
    """``"10/minute"``, ``"100/hour"``, ``"5/10second"`` (5 in 10 s) as a :class:`Rate`.

    Raises:
        ValueError: ``text`` is not ``<count>/[<n>]<second|minute|hour|day>`` with both
            numbers at least 1 and the count at most :data:`MAX_COUNT`.
    """
    match = _RATE.match(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a rate: write <count>/<unit>, such as 10/minute or 100/hour "
            "(units: second, minute, hour, day; 5/10second is 5 in 10 seconds)"
        )
    count, every, unit = int(match[1]), int(match[2] or 1), match[3]
    if count < 1 or every < 1:
        raise ValueError(f"{text!r}: the count and the period must be at least 1")
    if count > MAX_COUNT:
        # The window keeps one entry per admitted request.
        raise ValueError(f"{text!r}: at most {MAX_COUNT} requests per window")
    return Rate(count, every * _UNITS[unit])


def _valid_rate(text: str) -> str:
    parse_rate(text)
    return text


RateText = Annotated[str, AfterValidator(_valid_rate)]
"""A setting holding a rate such as ``10/minute``, checked at start-up."""


@dataclass(frozen=True, slots=True)
class CallerSubject:
    """How the limiter learns who signed in: the auth module provides one at start-up.

    Attributes:
        resolve: The verified principal's id for a request, or None when it carries no
            valid token. Its answer is kept on the request, so the route's own auth
            dependency does not verify the token again.
    """

    resolve: Callable[[Request], Awaitable[str | None]]


async def by_address(request: Request) -> str:
    """Key by the client address (as the server, trusting only its proxies, saw it)."""
    host = request.client.host if request.client is not None else "unknown"
    return f"address:{host}"


async def by_user_or_address(request: Request) -> str:
    """Key by the signed-in user when there is one, else by the client address."""
    installation = getattr(request.app.state, "omnistack", None)
    if isinstance(installation, Installation):
        try:
            subject = installation.resource(SUBJECT_RESOURCE, CallerSubject)
        except ModuleNotRunningError:
            pass  # no auth module: everyone is anonymous
        else:
            user = await subject.resolve(request)
            if user is not None:
                return f"user:{user}"
    return await by_address(request)


@declare_problems(429)
class RateLimit:
    """A dependency admitting at most a rate of requests per caller; 429 beyond it.

    Args:
        rate: The rate, ``"10/minute"``; or None with ``setting``.
        setting: The name of a settings field holding the rate (``"email_rate_limit"``),
            read while the app runs; or None with ``rate``.
        name: The limit's name in Redis keys and in the ``limit`` label of
            ``rate_limit_refusals_total``; routes sharing a name share their counts.
            Defaults to ``setting``, or the rate.
        key: Who is counted: :func:`by_user_or_address` (the default), :func:`by_address`,
            or an async function of the request returning a string.

    Raises:
        ValueError: Neither or both of ``rate`` and ``setting``, or ``rate`` is not a rate.
    """

    def __init__(
        self,
        rate: str | None = None,
        *,
        setting: str | None = None,
        name: str | None = None,
        key: KeyFunction = by_user_or_address,
    ) -> None:
        if (rate is None) == (setting is None):
            raise ValueError("give RateLimit a rate ('10/minute') or a setting, not both")
        self._rate = parse_rate(rate) if rate is not None else None
        self.setting = setting
        self.name = name or setting or str(self._rate)
        self.key = key

    def __repr__(self) -> str:
        what = self.setting if self._rate is None else str(self._rate)
        return f"RateLimit({what!r}, name={self.name!r})"

    def rate(self, request: Request) -> Rate:
        """The rate in force for ``request``'s app.

        Raises:
            ModuleNotRunningError: The app's settings have no field named ``setting``.
        """
        if self._rate is not None:
            return self._rate
        value = getattr(_settings_of(request), str(self.setting), None)
        if value is None:
            raise ModuleNotRunningError(
                f"RateLimit(setting={self.setting!r}): the app's settings have no such field; "
                "install the module that declares it, or give the rate itself"
            )
        return parse_rate(str(value))

    async def __call__(self, request: Request) -> None:
        """Admit the request, or refuse it with 429 and ``Retry-After``.

        Raises:
            ProblemError: 429 when the caller has used up the rate.
            ModuleNotRunningError: The app's settings have no field named ``setting``.
        """
        if not getattr(_settings_of(request), "rate_limit_enabled", True):
            return
        rate = self.rate(request)
        caller = await self.key(request)
        wait = await _windows_of(request).admit(f"{self.name}:{caller}", rate)
        if wait is None:
            return
        retry_after = max(1, math.ceil(wait))
        _count_refusal(self.name)
        raise ProblemError(
            429,
            f"Too many requests: at most {rate.count} in {_period(rate.seconds)}. "
            f"Try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
        )


def _settings_of(request: Request) -> Any:
    installation = getattr(request.app.state, "omnistack", None)
    if isinstance(installation, Installation):
        return installation.settings
    return getattr(request.app.state, "settings", None)


def _period(seconds: int) -> str:
    every, unit = _largest_unit(seconds)
    return f"a {unit}" if every == 1 else f"{every} {unit}s"


class MemoryWindows:
    """Sliding windows in this process: a deque of admission times per key."""

    def __init__(self) -> None:
        self._admitted: dict[str, deque[float]] = {}
        self._sweep_at = _MEMORY_SWEEP_AT

    async def admit(self, key: str, rate: Rate) -> float | None:
        """Admit one request under ``key``: None, or the seconds until one would be."""
        now = time.monotonic()
        if len(self._admitted) > self._sweep_at:
            self._sweep(now, rate.seconds)
        times = self._admitted.setdefault(key, deque())
        while times and times[0] <= now - rate.seconds:
            times.popleft()
        if len(times) < rate.count:
            times.append(now)
            return None
        return times[0] + rate.seconds - now

    def _sweep(self, now: float, seconds: int) -> None:
        # Keys of callers gone quiet for the current limit's window; a key of a longer limit
        # dropped early loses its count, which only errs towards admitting.
        since = now - seconds
        quiet = [k for k, times in self._admitted.items() if not times or times[-1] <= since]
        for key in quiet:
            del self._admitted[key]
        # Many callers still active: sweep again only when their number has doubled.
        self._sweep_at = max(_MEMORY_SWEEP_AT, 2 * len(self._admitted))


# Sliding log in one round trip: drop admissions older than the window, admit when fewer than
# the limit remain, else say how long until the oldest leaves. Times are Redis's own (TIME),
# in microseconds, so instances with skewed clocks agree.
_ADMIT_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  return -1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(oldest[2]) + window - now
"""


class SharedWindows:
    """Sliding windows in Redis, shared by every instance; this process's when it is down."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._script = redis.register_script(_ADMIT_SCRIPT)
        self._fallback = MemoryWindows()
        self._logged_at = -math.inf

    async def admit(self, key: str, rate: Rate) -> float | None:
        """Admit one request under ``key``: None, or the seconds until one would be."""
        from redis.exceptions import RedisError  # noqa: PLC0415 - the redis extra is optional

        member = uuid.uuid4().hex
        try:
            wait = await self._script(
                keys=[f"omnistack:rate_limit:{key}"],
                args=[rate.count, rate.seconds * 10**6, member],
            )
        except (RedisError, OSError) as exc:
            self._log_fallback(exc)
            return await self._fallback.admit(key, rate)
        return None if int(wait) < 0 else int(wait) / 10**6

    def _log_fallback(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._logged_at >= _FALLBACK_LOG_SECONDS:
            self._logged_at = now
            logger.warning(
                "Rate limits fall back to this instance's own counts: Redis does not answer (%s)",
                type(exc).__name__,
            )


def _windows_of(request: Request) -> MemoryWindows | SharedWindows:
    state = request.app.state
    redis = getattr(state, "redis", None)
    if redis is None:
        installation = getattr(state, "omnistack", None)
        redis = installation.redis if isinstance(installation, Installation) else None
    windows: MemoryWindows | SharedWindows | None = getattr(state, "rate_limit_windows", None)
    if redis is None:
        if not isinstance(windows, MemoryWindows):
            windows = state.rate_limit_windows = MemoryWindows()
        return windows
    # A restarted app opens a new client: the windows follow it.
    if not isinstance(windows, SharedWindows) or windows.redis is not redis:
        windows = state.rate_limit_windows = SharedWindows(redis)
    return windows


def _refusals() -> Any:
    if importlib.util.find_spec("prometheus_client") is None:
        return None
    from prometheus_client import Counter  # noqa: PLC0415 - optional extra

    from omnistack_core.observability.metrics import REGISTRY  # noqa: PLC0415 - same extra

    return Counter(
        "rate_limit_refusals_total",
        "Requests refused with 429 by a rate limit, by the limit's name.",
        ["limit"],
        registry=REGISTRY,
    )


_REFUSALS = _refusals()


def _count_refusal(name: str) -> None:
    if _REFUSALS is not None:
        _REFUSALS.labels(name).inc()
