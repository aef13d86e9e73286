"""Liveness and readiness: ``GET /api/v1/public/health`` and ``/health/ready``.

Modules contribute checks through the module protocol; an app adds its own with
:func:`register_check`. :func:`readiness_report` runs them for any app, so one that installed
modules with :func:`~omnistack_core.install` serves readiness on a route of its own.
"""

from omnistack_core.health.checks import (
    CheckResult,
    HealthCheck,
    register_check,
    registered_checks,
    run_checks,
)
from omnistack_core.health.readiness import ReadinessReport, readiness_report

__all__ = [
    "CheckResult",
    "HealthCheck",
    "ReadinessReport",
    "readiness_report",
    "register_check",
    "registered_checks",
    "run_checks",
]
