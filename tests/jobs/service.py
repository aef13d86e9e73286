"""Jobs of a small service, run by the tests in-process and by real arq workers.

Jobs leave their traces in Redis (``JOBS_TRACE_URL``) so tests can see what ran, how often,
and with which request id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os

from redis.asyncio import Redis

from omnistack_core import Settings
from omnistack_core.jobs import JobContext, JobsSettings, TransientError, job, once
from omnistack_core.request_context import current_request_id


class ServiceSettings(Settings, JobsSettings):
    """The settings of a service with the jobs module."""


def trace_client() -> Redis:
    return Redis.from_url(os.environ["JOBS_TRACE_URL"])


async def trace(ctx: JobContext, event: str, **details: object) -> None:
    client = trace_client()
    try:
        entry = {"event": event, "attempt": ctx.attempt, "request_id": current_request_id()}
        await client.rpush(f"trace:{ctx.job_id}", json.dumps({**entry, **details}))
        await client.rpush("trace:all", json.dumps({**entry, "job_id": ctx.job_id, **details}))
    finally:
        await client.aclose()


@job("tests.record")
async def record(ctx: JobContext, value: str) -> str:
    await trace(ctx, "record", value=value)
    return value


@job("tests.flaky", max_attempts=3)
async def flaky(ctx: JobContext, failures: int) -> None:
    await trace(ctx, "attempt")
    if ctx.attempt <= failures:
        raise TransientError("the provider is busy", retry_after=0.05)
    await trace(ctx, "done")


@job("tests.broken")
async def broken(ctx: JobContext) -> None:
    await trace(ctx, "attempt")
    raise ValueError("bad input")


@job("tests.deliver_once", timeout=3)
async def deliver_once(ctx: JobContext, key: str) -> None:
    await trace(ctx, "started")
    async with once(ctx.app.state.redis, f"deliver:{key}", ttl=3600, claim_ttl=3) as first:
        if first:
            await asyncio.sleep(1.5)  # long enough to be killed in the middle
            await trace(ctx, "delivered")


@job("tests.note")
async def note(ctx: JobContext, address: str) -> None:
    logging.getLogger("tests.jobs").info("Noted %s", address, extra={"address": address})
    await trace(ctx, "note")


JOBS = [record, flaky, broken, deliver_once, note]
"""The jobs a test service gives ``JobsModule(jobs=...)``."""
