"""``JobsModule``: the app's job queue, Redis-backed or in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import MetaData
from starlette.applications import Starlette

from omnistack_core.installation import Installation
from omnistack_core.jobs.metrics import job_metrics
from omnistack_core.jobs.outbox import jobs_metadata
from omnistack_core.jobs.queue import InlineQueue, JobQueue, RedisQueue, queue_of
from omnistack_core.jobs.registry import Jobs, JobTable, definition_of
from omnistack_core.jobs.serialization import dumps, loads
from omnistack_core.jobs.settings import JobsSettings
from omnistack_core.jobs.worker import redis_settings
from omnistack_core.migration_branch import MigrationBranch
from omnistack_core.module import Module
from omnistack_core.observability.scrape import add_scrape_hook

if TYPE_CHECKING:
    from arq.connections import ArqRedis


class JobsModule(Module[JobsSettings]):
    """A job queue: arq on ``REDIS_URL``, or in-process without it; ``JobsModule.of(app)``.

    Without ``REDIS_URL`` (development and test only) jobs run inside the app, so a service
    works with no server at all; with it, ``arq app.jobs.worker.WorkerSettings`` runs them.
    The queue takes the jobs every installed module contributes: the app's own are given
    here. The queue's depth is reported as ``background_jobs_queued`` on each metrics scrape.

    Args:
        jobs: The app's job functions, each decorated with ``@job``.
    """

    name = "jobs"
    settings_class = JobsSettings

    def __init__(self, *, jobs: Jobs = ()) -> None:
        for function in jobs:
            definition_of(function)  # refuses an undecorated function now, not at enqueue
        self._jobs = list(jobs)

    @classmethod
    def of(cls, app: Starlette) -> JobQueue:
        """The running app's job queue.

        Raises:
            ModuleNotRunningError: The app does not run the jobs module.
        """
        return queue_of(app)

    def jobs(self) -> Sequence[Callable[..., Awaitable[Any]]]:
        """The app's own jobs."""
        return self._jobs

    def metadata(self) -> Sequence[MetaData]:
        """The ``job_outbox`` table."""
        return [jobs_metadata]

    def migrations(self) -> MigrationBranch:
        """The ``omnistack_jobs`` branch: the revisions of the ``job_outbox``."""
        return MigrationBranch("omnistack_jobs", "omnistack_core.jobs:migrations")

    def summary(self, settings: JobsSettings) -> str:
        """Where jobs run."""
        if settings.redis_url is None:
            return "in-process (no REDIS_URL): jobs run inside the API"
        return f"arq workers on the {settings.jobs_queue_name} queue in REDIS_URL"

    def lifespan(self, app: FastAPI, settings: JobsSettings) -> AbstractAsyncContextManager[None]:
        """Open the queue at start-up; close it (finishing in-process jobs) at shutdown."""
        return _running(app, settings)


@asynccontextmanager
async def _running(app: FastAPI, settings: JobsSettings) -> AsyncIterator[None]:
    installation = Installation.of(app)
    jobs = JobTable(installation.jobs())
    database = installation.require_database()
    queue: JobQueue
    if settings.redis_url is None:
        queue = InlineQueue(app, settings, jobs, database)
    else:
        queue = RedisQueue(
            app,
            settings,
            jobs,
            database,
            _queue_client(settings.redis_url, settings.jobs_queue_name),
        )
    installation.provide(JobsModule.name, queue)
    if job_metrics is not None:
        add_scrape_hook(app, _report_depth)
    try:
        yield
    finally:
        await queue.close()


def _queue_client(url: SecretStr, queue_name: str) -> ArqRedis:
    """An arq client that connects on first use, not at start-up.

    arq's ``create_pool`` pings Redis, retrying, and raises when it never answers: the API
    then failed to start whenever Redis was down, and platforms crash-looped it. Connecting
    lazily, the API starts, readiness names Redis, jobs enqueued with a session wait in the
    outbox and the rest get a 503, until Redis answers again.
    """
    from arq.connections import ArqRedis  # noqa: PLC0415 - loaded with the module's extra
    from redis.asyncio import ConnectionPool  # noqa: PLC0415

    connection = redis_settings(url.get_secret_value())
    pool = ConnectionPool.from_url(
        url.get_secret_value(),
        socket_connect_timeout=connection.conn_timeout,
        max_connections=connection.max_connections,
    )
    client = ArqRedis(
        pool, job_serializer=dumps, job_deserializer=loads, default_queue_name=queue_name
    )
    client.auto_close_connection_pool = True  # it owns the pool: closing it closes the sockets
    return client


async def _report_depth(app: Starlette) -> None:
    from redis.exceptions import RedisError  # noqa: PLC0415 - loaded with the module's extra

    if job_metrics is None:
        return
    try:
        depth = await JobsModule.of(app).depth()
    except (RedisError, OSError):
        return  # Redis is down: readiness says so; the last depth reported stays
    job_metrics.queued.set(depth)
