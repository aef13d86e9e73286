"""The jobs module's settings."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, field_validator

from omnistack_core.module_settings import DEPLOYED, ModuleSettings, required
from omnistack_core.settings import redis_url_scheme


class JobsSettings(ModuleSettings):
    """Settings of :class:`~omnistack_core.jobs.JobsModule` and of the worker.

    Validator names start with ``_jobs_``: a service composes every module's settings class
    into one, where validators must not share names.
    """

    module = "jobs"

    redis_url: SecretStr | None = None
    """Redis, where the queue is (``redis://``, ``rediss://``, ``unix://``); without it jobs
    run inside the app, in development and test only."""

    jobs_queue_name: str = Field(default="omnistack:queue", min_length=1)
    """The Redis key of the queue; services sharing a Redis use different names."""
    jobs_max_concurrency: int = Field(default=50, ge=1, le=10_000)
    """Jobs one worker process runs at once."""
    jobs_timeout_seconds: float = Field(default=300.0, gt=0)
    """Default longest run of a job; a job that takes longer is cancelled and retried."""
    jobs_max_attempts: int = Field(default=5, ge=1, le=100)
    """Default attempts of a job failing with transient errors before it is recorded failed."""
    jobs_retry_base_seconds: float = Field(default=1.0, gt=0)
    """First retry delay; each later one doubles, with jitter."""
    jobs_retry_max_seconds: float = Field(default=300.0, gt=0)
    """Longest retry delay."""
    jobs_poll_seconds: float = Field(default=0.02, gt=0, le=5)
    """How often an idle worker looks for new jobs: the floor of a job's start latency."""
    jobs_shutdown_grace_seconds: float = Field(default=20.0, ge=0)
    """On SIGTERM, how long running jobs may finish before they are cancelled (and retried)."""
    jobs_health_check_seconds: float = Field(default=10.0, gt=0)
    """How often the worker refreshes its health key (``omnistack worker-check`` reads it)."""
    jobs_keep_result_seconds: float = Field(default=3600.0, ge=0)
    """How long a finished job's id blocks a new job with the same id (de-duplication)."""
    jobs_outbox_relay_seconds: float = Field(default=5.0, gt=0)
    """How often the worker publishes outbox rows a request could not publish itself (rows at
    least this old)."""
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """Serve the worker's Prometheus metrics on this port (none when unset)."""

    _jobs_redis_url_required = required(
        "redis_url",
        module="jobs",
        environments=DEPLOYED,
        hint="jobs run in-process without Redis only in development and test",
    )

    @field_validator("redis_url", mode="before")
    @classmethod
    def _jobs_redis_url_scheme(cls, value: Any) -> Any:
        return redis_url_scheme(value)
