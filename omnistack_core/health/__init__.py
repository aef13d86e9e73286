"""Liveness and readiness: ``GET /api/v1/public/health`` and ``/health/ready``.

Modules contribute checks through the module protocol; an app adds its own with
:func:`register_check`.
"""

from omnistack_core.health.checks import (
    CheckResult,
    HealthCheck,
    register_check,
    registered_checks,
    run_checks,
)

__all__ = ["CheckResult", "HealthCheck", "register_check", "registered_checks", "run_checks"]
