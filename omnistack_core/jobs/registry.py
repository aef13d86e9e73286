"""Job functions: the ``@job`` decorator, and the table of an app's jobs.

A job belongs to an app because a module contributes it (``Module.jobs()``): the service's
own through ``JobsModule(jobs=[...])``, the email module its send job. Decorating a function
registers nothing globally, so no import exists only for its side effect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from omnistack_core.installation import Installation
from omnistack_core.jobs.errors import UnknownJobError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from omnistack_core.db.session import Database

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a running job knows about itself and its service.

    Attributes:
        app: The service's app, started: every module's resources (``EmailModule.of(app)``).
        job_id: This job's id (stable across attempts).
        job_name: The name it was registered under.
        attempt: 1 for the first run, 2 for the first retry...
    """

    app: FastAPI
    job_id: str
    job_name: str
    attempt: int

    @property
    def database(self) -> Database:
        """The app's database: ``async with ctx.database.session() as session``."""
        return Installation.of(self.app).require_database()


JobFunction = Callable[Concatenate[JobContext, P], Awaitable[R]]

Jobs = Sequence[Callable[..., Awaitable[Any]]]
"""A list of job functions, as ``JobsModule(jobs=...)`` takes it: annotate a module-level list
with it (``JOBS: Jobs = [...]``), since jobs with different arguments have no narrower type
in common."""


@dataclass(frozen=True, slots=True)
class JobDefinition:
    """A job: a coroutine function and how it runs.

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


def job(
    name: str | None = None, *, max_attempts: int | None = None, timeout: float | None = None
) -> Callable[[JobFunction[P, R]], JobFunction[P, R]]:
    """Make a coroutine function a job; give it to ``JobsModule(jobs=[...])`` to run it.

    ``@job()`` names it after its module and function; pass ``name`` to keep the name stable
    when the code moves (queued jobs carry the name). The function is returned unchanged, so
    it can still be awaited directly in tests.

    Args:
        name: The job's name.
        max_attempts: Attempts for transient failures (default ``JOBS_MAX_ATTEMPTS``).
        timeout: Seconds one attempt may take (default ``JOBS_TIMEOUT_SECONDS``).
    """

    def define(function: JobFunction[P, R]) -> JobFunction[P, R]:
        job_name = name or f"{function.__module__}.{function.__qualname__}"
        definition = JobDefinition(job_name, function, max_attempts, timeout)
        function.job_definition = definition  # type: ignore[attr-defined]
        return function

    return define


def definition_of(function: Callable[..., Any]) -> JobDefinition:
    """The :class:`JobDefinition` ``@job`` gave ``function``.

    Raises:
        UnknownJobError: ``function`` is not decorated with ``@job``.
    """
    definition = getattr(function, "job_definition", None)
    if not isinstance(definition, JobDefinition):
        raise UnknownJobError(f"{function!r} is not a job: decorate it with @job()")
    return definition


class JobTable:
    """The jobs one app runs, by name: what its queue accepts and its worker executes.

    Args:
        jobs: Job functions (decorated with ``@job``).

    Raises:
        UnknownJobError: One of them is not decorated with ``@job``.
        ValueError: Two different functions share a name.
    """

    def __init__(self, jobs: Iterable[Callable[..., Any]]) -> None:
        self._by_name: dict[str, JobDefinition] = {}
        for function in jobs:
            definition = definition_of(function)
            existing = self._by_name.get(definition.name)
            if existing is not None and existing.function is not definition.function:
                raise ValueError(f"two jobs are named {definition.name!r}")
            self._by_name[definition.name] = definition

    @classmethod
    def of(cls, app: FastAPI) -> JobTable:
        """The table of every job ``app``'s modules contribute."""
        return cls(Installation.of(app).jobs())

    def name_of(self, job: Callable[..., Any] | str) -> str:
        """The name of ``job`` (a job function, or already a name).

        Raises:
            UnknownJobError: This app does not run ``job``.
        """
        name = job if isinstance(job, str) else definition_of(job).name
        self.definition(name)
        return name

    def definition(self, name: str) -> JobDefinition:
        """The job named ``name``.

        Raises:
            UnknownJobError: This app does not run a job of that name.
        """
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownJobError(
                f"{name!r} is not a job of this app: give it to JobsModule(jobs=[...])"
            ) from None

    def definitions(self) -> list[JobDefinition]:
        """Every job, by name."""
        return [self._by_name[name] for name in sorted(self._by_name)]
