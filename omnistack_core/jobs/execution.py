"""One attempt of one job: the same code path in the worker and in inline mode."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from omnistack_core.jobs.errors import TransientError
from omnistack_core.jobs.metrics import job_metrics
from omnistack_core.jobs.registry import JobContext, JobDefinition
from omnistack_core.jobs.retry import is_transient, retry_delay
from omnistack_core.jobs.settings import JobsSettings
from omnistack_core.request_context import request_id_var

logger = logging.getLogger("omnistack.jobs")

META_KEY = "__omnistack__"
"""The keyword argument carrying a job's metadata (the enqueuing request's id) to the worker."""


class RetryLater(Exception):  # noqa: N818 - a signal to the runner, not an error
    """The attempt failed transiently; run the job again after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"retry in {delay:.1f} s")
        self.delay = delay


@contextmanager
def job_request_id(meta: Mapping[str, Any]) -> Iterator[None]:
    """Make the id of the request that enqueued the job current while it runs."""
    token = request_id_var.set(meta.get("request_id"))
    try:
        yield
    finally:
        request_id_var.reset(token)


async def run_attempt(
    definition: JobDefinition,
    context: JobContext,
    settings: JobsSettings,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Run one attempt, within the job's timeout, and record how it went.

    Returns:
        What the job returned.

    Raises:
        RetryLater: It failed transiently and has attempts left.
        Exception: It failed for good (the job's own exception, or TimeoutError).
    """
    timeout = definition.timeout or settings.jobs_timeout_seconds
    max_attempts = definition.max_attempts or settings.jobs_max_attempts
    started = time.perf_counter()
    status = "success"
    try:
        async with asyncio.timeout(timeout):
            return await definition.function(context, *args, **kwargs)
    except Exception as exc:
        timed_out = isinstance(exc, TimeoutError)
        if is_transient(exc) and context.attempt < max_attempts:
            status = "retry"
            delay = retry_delay(
                context.attempt,
                base=settings.jobs_retry_base_seconds,
                maximum=settings.jobs_retry_max_seconds,
                retry_after=exc.retry_after if isinstance(exc, TransientError) else None,
            )
            raise RetryLater(delay) from exc
        status = "timeout" if timed_out else "failure"
        raise
    finally:
        seconds = time.perf_counter() - started
        if job_metrics is not None:
            job_metrics.finished(definition.name, status, seconds)
        log = logger.error if status in ("failure", "timeout") else logger.info
        log(
            "job %s %s in %.1f ms (attempt %d)",
            definition.name,
            status,
            seconds * 1000,
            context.attempt,
            extra={
                "job": definition.name,
                "job_id": context.job_id,
                "attempt": context.attempt,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
            },
        )
