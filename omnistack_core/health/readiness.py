"""Readiness of an app as one report: what ``GET /health/ready`` answers, for any app.

:func:`readiness_report` runs the app's registered checks (the database, Redis, the
installed modules' own) through a short cache and sums them up. The library's readiness
endpoint answers it as JSON; an app that installed modules with
:func:`~omnistack_core.install` serves it on a route of its own::

    @app.get("/ready")
    async def ready() -> JSONResponse:
        report = await readiness_report(app)
        return JSONResponse(report.as_dict(), status_code=200 if report.ready else 503)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from starlette.applications import Starlette

from omnistack_core.health.checks import CheckResult, ReadinessCache, registered_checks
from omnistack_core.health.draining import is_draining
from omnistack_core.health.failure_log import FAILURE_LOG_SECONDS, FailureLog

ReadinessStatus = Literal["ok", "degraded", "failed", "draining"]

DEFAULT_CACHE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class ReadinessReport:
    """Whether an app can take traffic, and what each check found.

    Attributes:
        status: ``ok`` when every check passed; ``degraded`` when only non-critical ones
            failed; ``failed`` when a critical one did; ``draining`` once the process has
            been asked to stop (no check runs then).
        checks: One result per registered check, errors sanitised (URL passwords and secret
            settings masked, cut at 200 characters).
    """

    status: ReadinessStatus
    checks: tuple[CheckResult, ...] = ()

    @property
    def ready(self) -> bool:
        """Whether to send the app traffic: answer 200 when True, 503 when False."""
        return self.status in ("ok", "degraded")

    def as_dict(self, *, detail: bool = False) -> dict[str, Any]:
        """The report as JSON data: ``{"status": ..., "checks": {name: {"status": ...}}}``.

        Args:
            detail: Add each check's ``latency_ms``, and ``error`` when it did not pass. The
                error text names hosts, databases and URLs: give it to operators only (the
                library's endpoint does when the caller presents ``METRICS_TOKEN``).
        """
        return {
            "status": self.status,
            "checks": {
                result.name: {
                    key: value
                    for key, value in (
                        ("status", result.status),
                        ("latency_ms", result.latency_ms if detail else None),
                        ("error", result.error if detail else None),
                    )
                    if value is not None
                }
                for result in self.checks
            },
        }


class _Readiness:
    """What the readiness reports of one app share: the cache, and the values to mask."""

    def __init__(self, cache_seconds: float) -> None:
        self.cache = ReadinessCache(cache_seconds)
        self.secrets: list[str] = []
        self.failures = FailureLog(FAILURE_LOG_SECONDS)


async def readiness_report(app: Starlette) -> ReadinessReport:
    """Run the readiness checks registered on ``app`` and sum them up.

    Works in any app: one built with :func:`~omnistack_core.create_app`, or one the modules
    were installed in with :func:`~omnistack_core.install`. The checks run concurrently, each
    within its timeout; a result younger than the cache's age (``HEALTH_CACHE_SECONDS`` with
    ``create_app``, 1 s otherwise) is reused, and callers arriving during a run share it. A
    failing check is logged (a warning with its error, at most once a minute while it keeps
    failing, and a line when it passes again).

    Args:
        app: The running app.

    Returns:
        The report; ``draining``, without running a check, once the process was asked to stop.
    """
    if is_draining(app):
        return ReadinessReport("draining")
    readiness = _readiness_of(app)
    results = await readiness.cache.results(
        app, registered_checks(app).values(), secrets=readiness.secrets
    )
    readiness.failures.note(results)
    return ReadinessReport(_overall(results), tuple(results))


def configure_readiness(
    app: Starlette, *, cache_seconds: float | None = None, secrets: Iterable[str] = ()
) -> None:
    """Set how long ``app``'s readiness results are reused, and add values to mask in errors.

    ``create_app`` sets the age from ``HEALTH_CACHE_SECONDS``; installing modules adds the
    secret values of their settings.

    Args:
        app: The app.
        cache_seconds: Seconds a result is reused; unchanged when None.
        secrets: Values never shown in a check's error.
    """
    readiness = _readiness_of(app)
    if cache_seconds is not None and cache_seconds != readiness.cache.ttl:
        readiness.cache = ReadinessCache(cache_seconds)
    readiness.secrets.extend(value for value in secrets if value not in readiness.secrets)


def _readiness_of(app: Starlette) -> _Readiness:
    readiness = getattr(app.state, "readiness", None)
    if not isinstance(readiness, _Readiness):
        readiness = app.state.readiness = _Readiness(DEFAULT_CACHE_SECONDS)
    return readiness


def _overall(results: list[CheckResult]) -> ReadinessStatus:
    statuses = {result.status for result in results}
    if "failed" in statuses:
        return "failed"
    return "degraded" if "degraded" in statuses else "ok"
