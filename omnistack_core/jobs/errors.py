"""The jobs module's exceptions.

::

    OmniStackError
     └── JobsError
          ├── TransientError       raise it for a failure worth retrying (429, 5xx, network)
          ├── UnknownJobError      enqueue() of a job nobody registered
          └── QueueUnavailableError  Redis cannot take the job now (a ProblemError: 503
                                     naming Redis; enqueue with a session and the outbox
                                     keeps the job instead)
"""

from __future__ import annotations

from omnistack_core.errors import OmniStackError, ProblemError


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


class QueueUnavailableError(JobsError, ProblemError):
    """The queue (Redis) could not take the job.

    Clients get 503 "The job queue (Redis) is unavailable", with a ``Retry-After``; the
    message, for the log, says which job and why.

    Args:
        message: What happened.
    """

    def __init__(self, message: str) -> None:
        ProblemError.__init__(
            self,
            503,
            "The job queue (Redis) is unavailable; try again shortly.",
            headers={"Retry-After": "5"},
        )
        self.message = message

    def __str__(self) -> str:
        return self.message
