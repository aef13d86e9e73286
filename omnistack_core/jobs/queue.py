"""Where jobs go: Redis (arq) in production, the process itself in development.

:class:`JobQueue` is the small interface the rest of the service uses; :class:`RedisQueue`
puts jobs on arq's queue for workers, :class:`InlineQueue` runs them in the API process as
background tasks, through the same attempt, retry and metrics code as the worker.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from starlette.applications import Starlette

from omnistack_core.installation import resource_of
from omnistack_core.jobs import outbox
from omnistack_core.jobs.errors import QueueUnavailableError
from omnistack_core.jobs.execution import (
    META_KEY,
    RetryLater,
    job_request_id,
    run_attempt,
)
from omnistack_core.jobs.registry import JobContext, JobTable
from omnistack_core.jobs.serialization import round_trip
from omnistack_core.jobs.settings import JobsSettings
from omnistack_core.request_context import current_request_id

if TYPE_CHECKING:
    from arq.connections import ArqRedis
    from fastapi import FastAPI
    from sqlalchemy.ext.asyncio import AsyncSession

    from omnistack_core.db.session import Database

logger = logging.getLogger("omnistack.jobs")


def _seconds(value: float | timedelta | None) -> timedelta | None:
    if value is None:
        return None
    return value if isinstance(value, timedelta) else timedelta(seconds=value)


class JobQueue(abc.ABC):
    """Enqueues jobs; ``JobsModule.of(app)`` is the app's while it runs.

    Args:
        app: The app whose jobs it runs (handed to each job in its context).
        settings: The jobs module's settings.
        jobs: The jobs it accepts.
        database: Where the outbox is.
    """

    def __init__(
        self, app: FastAPI, settings: JobsSettings, jobs: JobTable, database: Database
    ) -> None:
        self.app = app
        self.settings = settings
        self.jobs = jobs
        self.database = database
        self._publishing: set[asyncio.Task[None]] = set()
        self._published_rows = outbox.PublishedRows(database)

    async def enqueue(
        self,
        job: Callable[..., Any] | str,
        *args: Any,
        job_id: str | None = None,
        defer_by: float | timedelta | None = None,
        session: AsyncSession | None = None,
        **kwargs: Any,
    ) -> str | None:
        """Queue ``job(*args, **kwargs)`` to run soon, at least once.

        Args:
            job: A function registered with ``@job``, or its name.
            *args: Its positional arguments: JSON data (ids, strings, numbers, lists, dicts).
            job_id: Makes the enqueue idempotent: while a job with this id is queued, running
                or recently finished, enqueueing it again does nothing.
            defer_by: Run it no sooner than this (seconds, or a timedelta).
            session: Enqueue within this session's transaction (the outbox): the job is
                sent only if the transaction commits, and is not lost if it does.
            **kwargs: Its keyword arguments, JSON data too.

        Returns:
            The job's id, or None when a job with ``job_id`` was already queued.

        Raises:
            UnknownJobError: The app does not run ``job``.
            TypeError: An argument is not JSON data.
            QueueUnavailableError: The queue cannot take it (without ``session``).
        """
        name = self.jobs.name_of(job)
        json_args, json_kwargs = round_trip(args, kwargs)
        json_kwargs[META_KEY] = {"request_id": current_request_id()}
        delay = _seconds(defer_by)
        if session is not None:
            return await outbox.add(
                session,
                name,
                json_args,
                json_kwargs,
                job_id=job_id,
                defer_by=delay,
                on_commit=self._publish_after_commit,
            )
        run_at = datetime.now(UTC) + delay if delay else None
        return await self._send(name, json_args, json_kwargs, job_id, run_at)

    @abc.abstractmethod
    async def _send(
        self,
        name: str,
        args: list[Any],
        kwargs: dict[str, Any],
        job_id: str | None,
        run_at: datetime | None,
    ) -> str | None:
        """Put one job on the queue; None when its id is already there."""

    async def _send_outbox_row(
        self,
        name: str,
        args: list[Any],
        kwargs: dict[str, Any],
        job_id: str,
        run_at: datetime | None,
    ) -> bool:
        await self._send(name, args, kwargs, job_id, run_at)
        return True

    def _publish_after_commit(self, jobs: list[outbox.PendingJob]) -> None:
        task = asyncio.get_running_loop().create_task(self._publish(jobs))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _publish(self, jobs: list[outbox.PendingJob]) -> None:
        try:
            await outbox.publish_committed(self._published_rows, self._send_outbox_row, jobs)
        except Exception as exc:  # noqa: BLE001 - the relay publishes what is left
            logger.warning(
                "Could not publish %d committed jobs now (%s); the worker's relay will",
                len(jobs),
                type(exc).__name__,
            )

    async def relay(self, older_than: timedelta) -> int:
        """Publish outbox rows left behind; the worker calls this every few seconds."""
        return await outbox.publish(self.database, self._send_outbox_row, older_than=older_than)

    @abc.abstractmethod
    async def depth(self) -> int:
        """Jobs waiting to run."""

    async def close(self) -> None:
        """Finish publishing what transactions committed."""
        if self._publishing:
            await asyncio.wait(self._publishing, timeout=self.settings.jobs_shutdown_grace_seconds)


class RedisQueue(JobQueue):
    """Jobs go to arq's queue in Redis, for the workers (``arq app.jobs.worker.WorkerSettings``)."""

    def __init__(
        self,
        app: FastAPI,
        settings: JobsSettings,
        jobs: JobTable,
        database: Database,
        pool: ArqRedis,
    ) -> None:
        super().__init__(app, settings, jobs, database)
        self.pool = pool

    async def _send(
        self,
        name: str,
        args: list[Any],
        kwargs: dict[str, Any],
        job_id: str | None,
        run_at: datetime | None,
    ) -> str | None:
        from redis.exceptions import RedisError  # noqa: PLC0415 - with the jobs extra

        try:
            queued = await self.pool.enqueue_job(
                name,
                *args,
                _job_id=job_id,
                _defer_until=run_at,
                _queue_name=self.settings.jobs_queue_name,
                **kwargs,
            )
        except (RedisError, OSError) as exc:
            error = QueueUnavailableError(f"the queue cannot take {name}: {type(exc).__name__}")
            logger.warning("%s", error)
            raise error from exc
        return queued.job_id if queued is not None else None

    async def depth(self) -> int:
        """Jobs waiting in Redis, due or deferred."""
        count: int = await self.pool.zcard(self.settings.jobs_queue_name)
        return count

    async def close(self) -> None:
        """Finish publishing, then close the Redis pool."""
        await super().close()
        await self.pool.aclose()


class InlineQueue(JobQueue):
    """Jobs run in this process, as background tasks: development and tests without Redis.

    Same attempts, retries, timeouts, metrics and logs as a worker; a job id de-duplicates
    while the job is pending and for ``JOBS_KEEP_RESULT_SECONDS`` after, as in Redis. Jobs
    still pending at shutdown get the grace period, then are cancelled (and, with no Redis,
    lost: this is not for production).
    """

    def __init__(
        self, app: FastAPI, settings: JobsSettings, jobs: JobTable, database: Database
    ) -> None:
        super().__init__(app, settings, jobs, database)
        self._pending: dict[str, asyncio.Task[None]] = {}
        self._finished: dict[str, float] = {}  # job id -> when it finished (loop time)
        self.failed: list[tuple[str, str, str]] = []
        """(job id, job, error) of the jobs that failed for good, newest last."""

    async def _send(
        self,
        name: str,
        args: list[Any],
        kwargs: dict[str, Any],
        job_id: str | None,
        run_at: datetime | None,
    ) -> str | None:
        loop = asyncio.get_running_loop()
        kept_since = loop.time() - self.settings.jobs_keep_result_seconds
        self._finished = {key: at for key, at in self._finished.items() if at > kept_since}
        job_id = job_id or uuid.uuid4().hex
        if job_id in self._pending or job_id in self._finished:
            return None
        task = loop.create_task(self._run(name, args, kwargs, job_id, run_at))
        self._pending[job_id] = task
        task.add_done_callback(lambda _: self._done(job_id))
        return job_id

    def _done(self, job_id: str) -> None:
        self._pending.pop(job_id, None)
        self._finished[job_id] = asyncio.get_running_loop().time()

    async def _run(
        self,
        name: str,
        args: list[Any],
        kwargs: dict[str, Any],
        job_id: str,
        run_at: datetime | None,
    ) -> None:
        if run_at is not None:
            await asyncio.sleep(max(0.0, (run_at - datetime.now(UTC)).total_seconds()))
        job = self.jobs.definition(name)
        meta = kwargs.pop(META_KEY, {})
        attempt = 1
        with job_request_id(meta):
            while True:
                context = JobContext(self.app, job_id, name, attempt)
                try:
                    await run_attempt(job, context, self.settings, tuple(args), kwargs)
                except RetryLater as retry:
                    await asyncio.sleep(retry.delay)
                    attempt += 1
                    continue
                except Exception as exc:  # noqa: BLE001 - logged by run_attempt, kept here
                    self.failed.append((job_id, name, f"{type(exc).__name__}: {exc}"))
                return

    async def depth(self) -> int:
        """Jobs scheduled and not finished."""
        return len(self._pending)

    async def drain(self, wait_seconds: float = 30.0) -> None:
        """Wait until every pending job has finished (tests call this)."""
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while self._pending or self._publishing:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"{len(self._pending)} jobs still pending")
            await asyncio.wait([*self._pending.values(), *self._publishing], timeout=remaining)

    async def close(self) -> None:
        """Give pending jobs the grace period, then cancel them."""
        await super().close()
        tasks = list(self._pending.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.settings.jobs_shutdown_grace_seconds)
            for task in late:
                task.cancel()
            if late:
                logger.warning("Cancelled %d in-process jobs at shutdown", len(late))


def queue_of(app: Starlette) -> JobQueue:
    """The running app's job queue (``JobsModule.of(app)``).

    Raises:
        ModuleNotRunningError: The app does not run the jobs module.
    """
    # mypy refuses an abstract class as a type argument; isinstance takes it gladly.
    return resource_of(app, "jobs", JobQueue)  # type: ignore[type-abstract]


async def get_queue(request: Request) -> JobQueue:
    """FastAPI dependency: the app's job queue (``JobsModule.of(app)``).

    Async though it awaits nothing: FastAPI runs a plain ``def`` dependency in its thread pool,
    a thread handoff per request for a lookup.
    """
    return queue_of(request.app)


Queue = Annotated[JobQueue, Depends(get_queue)]
"""The app's job queue: ``async def handler(queue: Queue)``, then ``await queue.enqueue(...)``."""
