"""Readiness checks: a registry on the app, run concurrently, each within its own timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from starlette.applications import Starlette

from omnistack_core.redaction import redact_text

CheckStatus = Literal["ok", "degraded", "failed"]

DEFAULT_TIMEOUT = 2.0
_MAX_ERROR_LENGTH = 200


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """A named probe of one dependency.

    Attributes:
        name: Unique name, shown in the readiness response (``database``, ``redis``...).
        check: Coroutine function given the app; it returns when the dependency is usable
            and raises otherwise.
        timeout: Seconds the check may take before it counts as failed.
        critical: When False, a failure reports ``degraded`` and the service stays ready.
    """

    name: str
    check: Callable[[Starlette], Awaitable[object]]
    timeout: float = DEFAULT_TIMEOUT
    critical: bool = True


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check: status, how long it took, and a sanitised error."""

    name: str
    status: CheckStatus
    latency_ms: float
    error: str | None = None


def register_check(app: Starlette, check: HealthCheck) -> None:
    """Add ``check`` to the readiness checks of ``app``.

    Args:
        app: The application.
        check: The check; its name must not be taken.

    Raises:
        ValueError: A check with the same name is already registered.
    """
    checks = registered_checks(app)
    if check.name in checks:
        raise ValueError(f"a health check named {check.name!r} is already registered")
    checks[check.name] = check


def registered_checks(app: Starlette) -> dict[str, HealthCheck]:
    """The readiness checks of ``app`` by name (created empty on first use)."""
    if not hasattr(app.state, "health_checks"):
        app.state.health_checks = {}
    checks: dict[str, HealthCheck] = app.state.health_checks
    return checks


async def run_checks(
    app: Starlette, checks: Iterable[HealthCheck], secrets: Iterable[str] = ()
) -> list[CheckResult]:
    """Run ``checks`` concurrently and return their results in the same order.

    No check can hold the caller longer than the largest timeout: a check that ignores its
    cancellation is abandoned and reported as timed out.

    Args:
        app: Passed to each check.
        checks: The checks to run.
        secrets: Values masked in error messages, besides URL passwords.

    Returns:
        One result per check.
    """
    checks = list(checks)
    if not checks:
        return []
    hidden = tuple(secrets)
    started = time.perf_counter()
    tasks = [asyncio.ensure_future(_timed(app, check, hidden)) for check in checks]
    await asyncio.wait(tasks, timeout=max(check.timeout for check in checks) + 0.05)
    results = []
    for check, task in zip(checks, tasks, strict=True):
        if task.done():
            results.append(task.result())
        else:
            task.cancel()
            elapsed = (time.perf_counter() - started) * 1000
            results.append(_failure(check, elapsed, f"timed out after {check.timeout:g} s"))
    return results


async def _timed(app: Starlette, check: HealthCheck, secrets: tuple[str, ...]) -> CheckResult:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(check.timeout):
            await check.check(app)
    except TimeoutError:
        error = f"timed out after {check.timeout:g} s"
    except Exception as exc:  # noqa: BLE001 - any failure of a dependency is a failed check
        error = f"{type(exc).__name__}: {exc}"
    else:
        return CheckResult(check.name, "ok", _ms_since(started))
    return _failure(check, _ms_since(started), redact_text(error, secrets)[:_MAX_ERROR_LENGTH])


class ReadinessCache:
    """Runs the checks at most once per ``ttl`` seconds; concurrent callers share one run.

    A platform probing every instance every few seconds, plus a load balancer, plus a
    dashboard, must not turn into a database storm.

    Args:
        ttl: Seconds a result is reused; 0 reuses nothing but still shares a run in flight.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._results: list[CheckResult] = []
        self._finished_at = float("-inf")
        self._running: asyncio.Future[list[CheckResult]] | None = None

    async def results(
        self, app: Starlette, checks: Iterable[HealthCheck], secrets: Iterable[str] = ()
    ) -> list[CheckResult]:
        """The latest results, running the checks when the cached ones are too old."""
        if time.monotonic() - self._finished_at < self.ttl:
            return self._results
        if self._running is None:
            self._running = asyncio.ensure_future(run_checks(app, checks, secrets))
            self._running.add_done_callback(self._store)
        # Shielded: a caller that gives up must not cancel the run the others wait for.
        return await asyncio.shield(self._running)

    def _store(self, running: asyncio.Future[list[CheckResult]]) -> None:
        self._running = None
        if not running.cancelled() and running.exception() is None:
            self._results = running.result()
            self._finished_at = time.monotonic()


def _failure(check: HealthCheck, latency_ms: float, error: str) -> CheckResult:
    status: CheckStatus = "failed" if check.critical else "degraded"
    return CheckResult(check.name, status, round(latency_ms, 1), error)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
