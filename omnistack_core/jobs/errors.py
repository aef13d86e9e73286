"""The jobs module's exceptions.

::

    OmniStackError
     └── JobsError
          ├── TransientError       raise it for a failure worth retrying (429, 5xx, network)
          ├── UnknownJobError      enqueue() of a job nobody registered
          └── QueueUnavailableError  Redis cannot take the job now (the outbox keeps it)
"""

from __future__ import annotations

from omnistack_core.errors import OmniStackError


class JobsError(OmniStackError):
    """Root of the jobs module's errors."""


class TransientError(JobsError):
    """A failure that may not happen again: the job is retried with backoff.

    Args:
        message: What went wrong.
        retry_after: Seconds the other side asked us to wait (a 429's ``Retry-After``); the
            backoff waits at least that long.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnknownJobError(JobsError):
    """No job is registered under that name."""


class QueueUnavailableError(JobsError):
    """The queue (Redis) could not take the job."""
