"""Jobs that failed for good, kept where an operator can list and re-enqueue them."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from typing import Any, cast

from redis.asyncio import Redis


@dataclass(frozen=True, slots=True)
class FailedJob:
    """A job that failed for good.

    Attributes:
        job_id: Its id.
        job: Its registered name.
        args: Its positional arguments.
        kwargs: Its keyword arguments.
        error: The exception, as ``Type: message``.
        attempts: How many times it ran.
        failed_at: When it failed for good (Unix time).
    """

    job_id: str
    job: str
    args: list[Any]
    kwargs: dict[str, Any]
    error: str
    attempts: int
    failed_at: float


class FailedJobs:
    """The failed jobs of one queue, in a Redis hash next to the queue."""

    def __init__(self, redis: Redis, queue_name: str) -> None:
        self._redis = redis
        self.key = f"{queue_name}:failed"

    async def record(
        self,
        job_id: str,
        job: str,
        *,
        args: list[Any],
        kwargs: dict[str, Any],
        error: BaseException,
        attempts: int,
    ) -> None:
        """Keep a job that failed for good."""
        entry = FailedJob(
            job_id,
            job,
            args,
            kwargs,
            f"{type(error).__name__}: {error}"[:2000],
            attempts,
            time.time(),
        )
        await cast(
            "Awaitable[int]",
            self._redis.hset(self.key, job_id, json.dumps(asdict(entry), default=str)),
        )

    async def list(self) -> list[FailedJob]:
        """Every failed job, oldest first."""
        stored = await cast("Awaitable[dict[bytes, bytes]]", self._redis.hgetall(self.key))
        entries = [FailedJob(**json.loads(value)) for value in stored.values()]
        return sorted(entries, key=lambda entry: entry.failed_at)

    async def take(self, job_id: str) -> FailedJob | None:
        """Remove and return the failed job ``job_id`` (None when there is none)."""
        # redis-py types its commands as sync-or-async; this client is the async one.
        value = await cast("Awaitable[bytes | None]", self._redis.hget(self.key, job_id))
        if value is None or not await cast("Awaitable[int]", self._redis.hdel(self.key, job_id)):
            return None
        return FailedJob(**json.loads(value))
