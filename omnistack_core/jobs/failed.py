"""Jobs that failed for good, kept where an operator can list, re-enqueue or discard them.

Each entry is a field of a Redis hash next to the queue (``<queue>:failed``); a sorted set by
failure time (``<queue>:failed:by-time``, and one per job name) indexes them, so a page of the
newest failures, or of one job's, costs a range read however many there are.
"""

from __future__ import annotations

import builtins
import json
import time
import traceback
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

from redis.asyncio import Redis

if TYPE_CHECKING:
    from arq.connections import ArqRedis

Cursor = tuple[float, str]
"""Where a page of failed jobs ends: the last entry's ``(failed_at, job_id)``."""


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
        traceback: The innermost frames of its exception, ``file:line in function`` each
            (empty for failures recorded before this was kept).
    """

    job_id: str
    job: str
    args: list[Any]
    kwargs: dict[str, Any]
    error: str
    attempts: int
    failed_at: float
    traceback: str = ""

    @property
    def cursor(self) -> Cursor:
        """The cursor of a page that ends with this entry."""
        return (self.failed_at, self.job_id)

    @property
    def retry_id(self) -> str:
        """The id :meth:`FailedJobs.retry` enqueues it under.

        A new id: the failed job's own stays taken while arq keeps its result. The same for
        every retry of one failure, so retrying it twice enqueues it once.
        """
        return f"{self.job_id}:retry:{int(self.failed_at)}"


def _frames(error: BaseException, keep: int = 8) -> str:
    # Where it failed, not the whole stack: file, line and function of the innermost frames;
    # source lines and locals stay out, since they may hold the job's data.
    frames = traceback.extract_tb(error.__traceback__)[-keep:]
    return "\n".join(f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in frames)


class FailedJobs:
    """The failed jobs of one queue, in a Redis hash next to the queue."""

    def __init__(self, redis: Redis, queue_name: str) -> None:
        self._redis = redis
        self.queue_name = queue_name
        self.key = f"{queue_name}:failed"
        self.index_key = f"{self.key}:by-time"

    def _job_index(self, job: str) -> str:
        return f"{self.index_key}:{job}"

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
            _frames(error),
        )
        await self._store(entry)

    async def _store(self, entry: FailedJob) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key, entry.job_id, json.dumps(asdict(entry), default=str))
            pipe.zadd(self.index_key, {entry.job_id: entry.failed_at})
            pipe.zadd(self._job_index(entry.job), {entry.job_id: entry.failed_at})
            await pipe.execute()

    async def list(self) -> list[FailedJob]:
        """Every failed job, oldest first."""
        stored = await cast("Awaitable[dict[bytes, bytes]]", self._redis.hgetall(self.key))
        entries = [FailedJob(**json.loads(value)) for value in stored.values()]
        return sorted(entries, key=lambda entry: entry.failed_at)

    async def count(self, job: str | None = None) -> int:
        """How many jobs failed for good (of the job named ``job``, when given)."""
        await self._index_entries_kept_before_the_index()
        key = self.index_key if job is None else self._job_index(job)
        return int(await self._redis.zcard(key))

    async def page(
        self, *, after: Cursor | None = None, limit: int = 50, job: str | None = None
    ) -> builtins.list[FailedJob]:
        """The newest failed jobs, ``limit`` of them, older than ``after``.

        Args:
            after: The :attr:`FailedJob.cursor` of the last entry of the previous page.
            limit: At most this many.
            job: Only the jobs with this registered name.
        """
        await self._index_entries_kept_before_the_index()
        key = self.index_key if job is None else self._job_index(job)
        if after is None:
            ids = await self._redis.zrevrange(key, 0, limit - 1)
        else:
            score, last_id = after
            # Entries failing at the same instant sort by id (descending): skip those up to
            # and including the cursor's, however many share its score.
            ties = int(await self._redis.zcount(key, score, score))
            candidates = await self._redis.zrevrangebyscore(
                key, score, "-inf", start=0, num=limit + ties, withscores=True
            )
            ids = [
                member
                for member, member_score in candidates
                if member_score < score or member.decode() < last_id
            ][:limit]
        if not ids:
            return []
        values = await cast("Awaitable[list[bytes | None]]", self._redis.hmget(self.key, ids))
        return [FailedJob(**json.loads(value)) for value in values if value is not None]

    async def get(self, job_id: str) -> FailedJob | None:
        """The failed job ``job_id``, or None."""
        value = await cast("Awaitable[bytes | None]", self._redis.hget(self.key, job_id))
        return None if value is None else FailedJob(**json.loads(value))

    async def take(self, job_id: str) -> FailedJob | None:
        """Remove and return the failed job ``job_id`` (None when there is none)."""
        # redis-py types its commands as sync-or-async; this client is the async one.
        value = await cast("Awaitable[bytes | None]", self._redis.hget(self.key, job_id))
        if value is None or not await cast("Awaitable[int]", self._redis.hdel(self.key, job_id)):
            return None
        entry = FailedJob(**json.loads(value))
        await self._redis.zrem(self.index_key, job_id)
        await self._redis.zrem(self._job_index(entry.job), job_id)
        return entry

    async def discard(self, job_id: str) -> FailedJob | None:
        """Forget the failed job ``job_id`` without running it again (None when there is none)."""
        return await self.take(job_id)

    async def retry(self, job_id: str, pool: ArqRedis) -> str | None:
        """Enqueue the failed job ``job_id`` again, then forget the failure.

        Enqueued first, removed after: a crash between the two leaves the entry listed, and
        retrying it again enqueues nothing new (the retry's id is taken).

        Args:
            job_id: The failed job's id.
            pool: arq's pool on this queue's Redis.

        Returns:
            The id the job was enqueued under, or None when there is no such failed job.
        """
        entry = await self.get(job_id)
        if entry is None:
            return None
        await pool.enqueue_job(
            entry.job,
            *entry.args,
            _job_id=entry.retry_id,
            _queue_name=self.queue_name,
            **entry.kwargs,
        )
        await self.take(job_id)
        return entry.retry_id

    async def retry_all(self, pool: ArqRedis, *, job: str | None = None) -> int:
        """Enqueue again every failed job (of the job named ``job``); how many were."""
        retried = 0
        while batch := await self.page(limit=100, job=job):
            for entry in batch:
                if await self.retry(entry.job_id, pool) is not None:
                    retried += 1
        return retried

    async def _index_entries_kept_before_the_index(self) -> None:
        # Entries recorded by a release without the index are indexed on first use.
        total = int(await cast("Awaitable[int]", self._redis.hlen(self.key)))
        if total == int(await self._redis.zcard(self.index_key)):
            return
        for entry in await self.list():
            await self._store(entry)
