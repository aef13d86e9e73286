"""``JobsModule``: the app's job queue, Redis-backed or in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import cast

from fastapi import FastAPI
from sqlalchemy import MetaData
from starlette.applications import Starlette

from omnistack_core.jobs.metrics import job_metrics
from omnistack_core.jobs.outbox import jobs_metadata
from omnistack_core.jobs.queue import InlineQueue, JobQueue, RedisQueue
from omnistack_core.jobs.serialization import dumps, loads
from omnistack_core.jobs.settings import JobsSettings
from omnistack_core.jobs.worker import redis_settings
from omnistack_core.module import Module
from omnistack_core.observability.scrape import add_scrape_hook
from omnistack_core.settings import Settings


class JobsModule(Module):
    """Puts a job queue on ``app.state.jobs``: arq on ``REDIS_URL``, or in-process without it.

    Without ``REDIS_URL`` (development and test only) jobs run inside the app, so a service
    works with no server at all; with it, ``arq app.jobs.worker.WorkerSettings`` runs them.
    The queue's depth is reported as ``background_jobs_queued`` on each metrics scrape.
    """

    name = "jobs"
    settings_class = JobsSettings

    def metadata(self) -> Sequence[MetaData]:
        """The ``job_outbox`` table."""
        return [jobs_metadata]

    def lifespan(self, app: FastAPI, settings: Settings) -> AbstractAsyncContextManager[None]:
        """Open the queue at start-up; close it (finishing in-process jobs) at shutdown."""
        return _running(app, cast("JobsSettings", settings))


@asynccontextmanager
async def _running(app: FastAPI, settings: JobsSettings) -> AsyncIterator[None]:
    queue: JobQueue
    if settings.redis_url is None:
        queue = InlineQueue(app, settings)
    else:
        from arq import create_pool  # noqa: PLC0415 - loaded with the module's extra

        pool = await create_pool(
            redis_settings(settings.redis_url.get_secret_value()),
            job_serializer=dumps,
            job_deserializer=loads,
            default_queue_name=settings.jobs_queue_name,
        )
        queue = RedisQueue(app, settings, pool)
    app.state.jobs = queue
    if job_metrics is not None:
        add_scrape_hook(app, _report_depth)
    try:
        yield
    finally:
        await queue.close()


async def _report_depth(app: Starlette) -> None:
    if job_metrics is not None:
        queue: JobQueue = app.state.jobs
        job_metrics.queued.set(await queue.depth())
