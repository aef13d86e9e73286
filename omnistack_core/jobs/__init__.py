"""Background jobs on arq and Redis: ``@job``, a queue for request handlers, the worker.

Needs the ``jobs`` extra: ``pip install 'omnistack-core[jobs]'``. Without ``REDIS_URL``
(development and test) jobs run inside the app.
"""

import importlib.util

from omnistack_core.errors import MissingDependencyError

if not all(importlib.util.find_spec(name) for name in ("arq", "redis")):
    raise MissingDependencyError("jobs", "jobs")

from omnistack_core.jobs.errors import (
    JobsError,
    QueueUnavailableError,
    TransientError,
    UnknownJobError,
)
from omnistack_core.jobs.failed import FailedJob, FailedJobs
from omnistack_core.jobs.heartbeat import WorkerHeartbeat, live_workers
from omnistack_core.jobs.module import JobsModule
from omnistack_core.jobs.once import once
from omnistack_core.jobs.outbox import job_outbox, jobs_metadata
from omnistack_core.jobs.queue import InlineQueue, JobQueue, Queue, RedisQueue, get_queue
from omnistack_core.jobs.registry import JobContext, JobDefinition, Jobs, JobTable, job
from omnistack_core.jobs.settings import JobsSettings
from omnistack_core.jobs.worker import worker_settings

__all__ = [
    "FailedJob",
    "FailedJobs",
    "InlineQueue",
    "JobContext",
    "JobDefinition",
    "JobQueue",
    "JobTable",
    "Jobs",
    "JobsError",
    "JobsModule",
    "JobsSettings",
    "Queue",
    "QueueUnavailableError",
    "RedisQueue",
    "TransientError",
    "UnknownJobError",
    "WorkerHeartbeat",
    "get_queue",
    "job",
    "job_outbox",
    "jobs_metadata",
    "live_workers",
    "once",
    "worker_settings",
]
