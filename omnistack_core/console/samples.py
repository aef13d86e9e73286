"""The overview's recent history: readiness and the 5xx count, sampled while the app runs.

A sample is taken every ``CONSOLE_SAMPLE_SECONDS`` in the background and each time the
overview is opened; the console keeps the last 30 of this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from omnistack_core.console.state import ConsoleState, Sample
from omnistack_core.health.readiness import ReadinessReport, readiness_report

logger = logging.getLogger("omnistack.console")


def errors_5xx() -> float | None:
    """5xx responses this process has served, from the metrics; None when they are off."""
    try:
        from omnistack_core.observability.metrics import HTTP_REQUESTS  # noqa: PLC0415
    except ImportError:  # no observability extra: no metrics to read
        return None
    total = 0.0
    for metric in HTTP_REQUESTS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("status", "").startswith("5"):
                total += sample.value
    return total


async def take_sample(app: Starlette) -> ReadinessReport:
    """Check readiness now and keep the result (and the 5xx count) in the history."""
    report = await readiness_report(app)
    ConsoleState.of(app).history.append(
        Sample(
            time.time(),
            report.status,
            tuple(check.name for check in report.checks if check.status != "ok"),
            errors_5xx(),
        )
    )
    return report


@asynccontextmanager
async def sampling(app: Starlette, seconds: float) -> AsyncIterator[None]:
    """Take a sample every ``seconds`` while the block runs (never, when ``seconds`` is 0)."""
    if seconds <= 0:
        yield
        return

    async def every_interval() -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await take_sample(app)
            except Exception:  # the next sample may succeed; the page works either way
                logger.warning("Could not sample readiness for the console", exc_info=True)

    task = asyncio.get_running_loop().create_task(every_interval())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
