"""Job functions: the ``@job`` decorator and the registry the worker and queues look them up in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from omnistack_core.jobs.errors import UnknownJobError

if TYPE_CHECKING:
    from fastapi import FastAPI

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a running job knows about itself and its service.

    Attributes:
        app: The service's app, started: ``app.state.database``, ``app.state.redis``,
            ``app.state.jobs`` and every module's resources.
        job_id: This job's id (stable across attempts).
        job_name: The name it was registered under.
        attempt: 1 for the first run, 2 for the first retry...
    """

    app: FastAPI
    job_id: str
    job_name: str
    attempt: int


JobFunction = Callable[Concatenate[JobContext, P], Awaitable[R]]


@dataclass(frozen=True, slots=True)
class JobDefinition:
    """A registered job.

    Attributes:
        name: The name the queue carries (stable across refactors: not the import path).
        function: The coroutine function, called with a :class:`JobContext` first.
        max_attempts: Attempts before a transiently failing job is recorded as failed;
            None means ``JOBS_MAX_ATTEMPTS``.
        timeout: Seconds one attempt may take; None means ``JOBS_TIMEOUT_SECONDS``.
    """

    name: str
    function: Callable[..., Awaitable[Any]]
    max_attempts: int | None = None
    timeout: float | None = None


_registry: dict[str, JobDefinition] = {}


def job(
    name: str | None = None, *, max_attempts: int | None = None, timeout: float | None = None
) -> Callable[[JobFunction[P, R]], JobFunction[P, R]]:
    """Register a coroutine function as a job.

    ``@job()`` names it after its module and function; pass ``name`` to keep the name stable
    when the code moves (queued jobs carry the name). The function is returned unchanged, so
    it can still be awaited directly in tests.

    Args:
        name: The job's name.
        max_attempts: Attempts for transient failures (default ``JOBS_MAX_ATTEMPTS``).
        timeout: Seconds one attempt may take (default ``JOBS_TIMEOUT_SECONDS``).

    Raises:
        ValueError: Another function is registered under the same name.
    """

    def register(function: JobFunction[P, R]) -> JobFunction[P, R]:
        job_name = name or f"{function.__module__}.{function.__qualname__}"
        existing = _registry.get(job_name)
        if existing is not None and existing.function is not function:
            raise ValueError(f"a job named {job_name!r} is already registered")
        _registry[job_name] = JobDefinition(job_name, function, max_attempts, timeout)
        function.job_name = job_name  # type: ignore[attr-defined]
        return function

    return register


def job_name(job: Callable[..., Any] | str) -> str:
    """The registered name of ``job`` (a job function, or already a name).

    Raises:
        UnknownJobError: ``job`` was never registered.
    """
    name = job if isinstance(job, str) else getattr(job, "job_name", None)
    if name is None or name not in _registry:
        raise UnknownJobError(f"{job!r} is not a registered job: decorate it with @job()")
    return name


def definition(name: str) -> JobDefinition:
    """The job registered as ``name``.

    Raises:
        UnknownJobError: Nothing is registered under that name.
    """
    try:
        return _registry[name]
    except KeyError:
        raise UnknownJobError(f"no job named {name!r} is registered in this process") from None


def registered_jobs() -> list[JobDefinition]:
    """Every registered job, by name."""
    return [_registry[name] for name in sorted(_registry)]
