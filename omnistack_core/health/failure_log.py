"""Readiness failures in the log: one line per failing check, not one per probe."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from omnistack_core.health.checks import CheckResult

logger = logging.getLogger("omnistack.health")

FAILURE_LOG_SECONDS = 60.0
"""While a check keeps failing, its warning is repeated at most this often."""


class FailureLog:
    """Logs the checks that fail, each at most once per ``interval``, and their recovery.

    Platforms probe readiness every few seconds on every instance; a line per probe would
    bury everything else in the log while a dependency is down.

    Args:
        interval: Seconds between two warnings about the same failing check.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._warned_at: dict[str, float] = {}

    def note(self, results: Iterable[CheckResult]) -> None:
        """Log what ``results`` say is failing, or passing again."""
        now = time.monotonic()
        for result in results:
            warned_at = self._warned_at.get(result.name)
            if result.status == "ok":
                if warned_at is not None:
                    del self._warned_at[result.name]
                    logger.info(
                        "Readiness check %s passes again",
                        result.name,
                        extra={"check": result.name, "check_status": result.status},
                    )
            elif warned_at is None or now - warned_at >= self.interval:
                self._warned_at[result.name] = now
                logger.warning(
                    "Readiness check %s %s: %s",
                    result.name,
                    result.status,
                    result.error,
                    extra={"check": result.name, "check_status": result.status},
                )
