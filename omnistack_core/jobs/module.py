"""``JobsModule``: the app's job queue, Redis-backed or in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
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
        from arq import create_pool  # noqa: PLC0415 - loaded with the module's extra

        pool = await create_pool(
            redis_settings(settings.redis_url.get_secret_value()),
            job_serializer=dumps,
            job_deserializer=loads,
            default_queue_name=settings.jobs_queue_name,
        )
        queue = RedisQueue(app, settings, jobs, database, pool)
    installation.provide(JobsModule.name, queue)
    if job_metrics is not None:
        add_scrape_hook(app, _report_depth)
    try:
        yield
    finally:
        await queue.close()


async def _report_depth(app: Starlette) -> None:
    if job_metrics is not None:
        job_metrics.queued.set(await JobsModule.of(app).depth())
