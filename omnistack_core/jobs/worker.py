"""The worker: ``arq app.jobs.worker.WorkerSettings``, built by :func:`worker_settings`.

The worker starts the service's app (its lifespan: database, Redis, every module), runs the
registered jobs with the same attempt code as inline mode, retries transient failures with
backoff through arq's ``Retry``, keeps jobs that failed for good where ``omnistack jobs
failed`` lists them, relays the outbox, refreshes its health key every few seconds, and on
SIGTERM stops taking jobs and lets running ones finish within the grace period.

Delivery is at least once: a worker killed mid-job (SIGKILL, out of memory, a lost machine)
leaves the job in the queue, and another worker runs it again once the job's timeout has
passed. Make side effects idempotent (:func:`~omnistack_core.jobs.once`, or the provider's
idempotency key).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from arq.connections import RedisSettings
from arq.cron import CronJob
from arq.worker import Retry, func

from omnistack_core.installation import Installation
from omnistack_core.jobs.execution import META_KEY, RetryLater, job_request_id, run_attempt
from omnistack_core.jobs.failed import FailedJobs
from omnistack_core.jobs.heartbeat import WorkerBeat, worker_beat_of
from omnistack_core.jobs.metrics import job_metrics
from omnistack_core.jobs.private_logs import keep_job_arguments_out_of_logs
from omnistack_core.jobs.queue import JobQueue, queue_of
from omnistack_core.jobs.redis_wait import announce_redis_wait, waiting_redis_settings
from omnistack_core.jobs.registry import JobContext, JobDefinition, JobTable
from omnistack_core.jobs.serialization import dumps, loads
from omnistack_core.jobs.settings import JobsSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger("omnistack.jobs")

# arq's own timeout only backs ours up: run_attempt times the job out first, to count it.
_TIMEOUT_MARGIN = 5.0


def redis_settings(url: str) -> RedisSettings:
    """The arq connection settings for ``REDIS_URL`` (``redis://``, ``rediss://``, ``unix://``)."""
    return RedisSettings.from_dsn(url)


def worker_settings(
    app: FastAPI,
    *,
    jobs: Sequence[Callable[..., Awaitable[Any]]] | None = None,
    cron_jobs: Sequence[CronJob] = (),
) -> type:
    """Build the class ``arq`` loads, for ``app``'s settings and the registered jobs.

    A service's ``app/jobs/worker.py``::

        from omnistack_core.jobs import worker_settings

        from app.main import app

        WorkerSettings = worker_settings(app)

    Args:
        app: The service's app; the worker runs its lifespan and hands it to jobs.
        jobs: The job functions this worker runs; when None, every job the app's modules
            contribute (``JobsModule(jobs=[...])``, the email module's send job...).
        cron_jobs: Periodic jobs (``arq.cron.cron(...)``).

    Returns:
        The settings class for ``arq app.jobs.worker.WorkerSettings``.

    Raises:
        TypeError: ``app`` does not run the jobs module, or has no ``REDIS_URL``.
    """
    _route_arq_command_logging()
    announce_redis_wait()
    keep_job_arguments_out_of_logs()
    installation = Installation.of(app)
    settings = installation.settings
    if not installation.installed("jobs") or not isinstance(settings, JobsSettings):
        raise TypeError("the app must run the jobs module: create_app(modules=[JobsModule()])")
    if settings.redis_url is None:
        raise TypeError("a worker needs REDIS_URL; without it jobs run inside the app")
    table = JobTable(installation.jobs())
    definitions = (
        table.definitions()
        if jobs is None
        else [table.definition(table.name_of(job)) for job in jobs]
    )
    functions = [_arq_function(definition, settings) for definition in definitions]

    async def startup(ctx: dict[str, Any]) -> None:
        await _start(ctx, app, settings)

    async def shutdown(ctx: dict[str, Any]) -> None:
        await _stop(ctx)

    return type(
        "WorkerSettings",
        (),
        {
            "functions": functions,
            "cron_jobs": list(cron_jobs),
            "redis_settings": waiting_redis_settings(settings.redis_url.get_secret_value()),
            "queue_name": settings.jobs_queue_name,
            "max_jobs": settings.jobs_max_concurrency,
            "job_timeout": settings.jobs_timeout_seconds + _TIMEOUT_MARGIN,
            "poll_delay": settings.jobs_poll_seconds,
            "keep_result": settings.jobs_keep_result_seconds,
            "log_results": False,  # a result can hold what the arguments did (private_logs)
            "health_check_interval": settings.jobs_health_check_seconds,
            "job_completion_wait": int(settings.jobs_shutdown_grace_seconds),
            "job_serializer": dumps,
            "job_deserializer": loads,
            "on_startup": startup,
            "on_shutdown": shutdown,
        },
    )


def _route_arq_command_logging() -> None:
    """Under the ``arq`` command, let arq's records go through the service's log handler.

    The command configures a plain-text handler of its own for the ``arq`` logger after it
    has imported the worker settings (this runs during that import), so the worker's first
    lines came out as text, and twice (the root handler has them too). It reads that
    configuration from ``arq.cli.default_log_config`` when it applies it: replaced here, the
    ``arq`` logger keeps no handler and propagates to the service's.
    """
    command = sys.modules.get("arq.cli")
    if command is not None:
        command.default_log_config = _propagating_log_config  # type: ignore[attr-defined]


def _propagating_log_config(verbose: bool) -> dict[str, Any]:  # noqa: FBT001 - arq's signature
    level = "DEBUG" if verbose else "INFO"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {"arq": {"level": level, "handlers": [], "propagate": True}},
    }


def _arq_function(definition: JobDefinition, settings: JobsSettings) -> Any:
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        meta = kwargs.pop(META_KEY, {})
        app: FastAPI = ctx["app"]
        context = JobContext(app, ctx["job_id"], definition.name, ctx["job_try"])
        beat = worker_beat_of(ctx)
        if beat is not None:
            beat.jobs_in_progress += 1
        with job_request_id(meta), _counted(beat):
            try:
                result = await run_attempt(definition, context, settings, args, kwargs)
            except RetryLater as retry:
                if beat is not None:
                    beat.jobs_retried += 1
                raise Retry(defer=retry.delay) from retry.__cause__
            except Exception as exc:
                if beat is not None:
                    beat.jobs_failed += 1
                failed: FailedJobs = ctx["failed_jobs"]
                await failed.record(
                    context.job_id,
                    definition.name,
                    args=list(args),
                    kwargs=kwargs,
                    error=exc,
                    attempts=context.attempt,
                )
                raise
            if beat is not None:
                beat.jobs_done += 1
            return result

    attempts = definition.max_attempts or settings.jobs_max_attempts
    timeout = (definition.timeout or settings.jobs_timeout_seconds) + _TIMEOUT_MARGIN
    return func(run, name=definition.name, max_tries=attempts, timeout=timeout)


@contextlib.contextmanager
def _counted(beat: WorkerBeat | None) -> Iterator[None]:
    try:
        yield
    finally:
        if beat is not None:
            beat.jobs_in_progress -= 1


async def _start(ctx: dict[str, Any], app: FastAPI, settings: JobsSettings) -> None:
    # The arq command configures its own text handler after importing the settings; its
    # records go through the service's handler instead, as every other record does.
    arq_logger = logging.getLogger("arq")
    arq_logger.handlers.clear()
    arq_logger.propagate = True
    stack = AsyncExitStack()
    await stack.enter_async_context(app.router.lifespan_context(app))
    ctx["stack"] = stack
    ctx["app"] = app
    ctx["failed_jobs"] = FailedJobs(ctx["redis"], settings.jobs_queue_name)
    if settings.worker_metrics_port is not None and job_metrics is not None:
        from prometheus_client import start_http_server  # noqa: PLC0415 - observability extra

        start_http_server(settings.worker_metrics_port)
    queue = queue_of(app)
    loop = asyncio.get_running_loop()
    ctx["relay"] = loop.create_task(_relay(queue, settings))
    beat = WorkerBeat(settings.jobs_queue_name, settings.jobs_health_check_seconds)
    # The first beat before the first job, so the worker is listed as soon as it runs.
    await beat.beat(ctx["redis"])
    ctx["heartbeat"] = beat
    ctx["heartbeat_task"] = loop.create_task(beat.run(ctx["redis"]))
    logger.info(
        "Worker started: %d jobs on %s", len(queue.jobs.definitions()), settings.jobs_queue_name
    )


async def _stop(ctx: dict[str, Any]) -> None:
    for name in ("relay", "heartbeat_task"):
        task = cast("asyncio.Task[None] | None", ctx.get(name))
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    beat = worker_beat_of(ctx)
    if beat is not None:
        await beat.remove(ctx["redis"])
    stack = cast("AsyncExitStack | None", ctx.get("stack"))
    if stack is not None:
        await stack.aclose()


async def _relay(queue: JobQueue, settings: JobsSettings) -> None:
    while True:
        await asyncio.sleep(settings.jobs_outbox_relay_seconds)
        try:
            # Younger rows are likely still being published by the process that wrote them.
            relayed = await queue.relay(timedelta(seconds=settings.jobs_outbox_relay_seconds))
            depth = await queue.depth()
        except Exception as exc:  # noqa: BLE001 - the next round tries again
            logger.warning("Outbox relay failed: %s: %s", type(exc).__name__, exc)
            continue
        if relayed:
            logger.info("Relayed %d jobs from the outbox", relayed)
        if job_metrics is not None:
            job_metrics.queued.set(depth)
