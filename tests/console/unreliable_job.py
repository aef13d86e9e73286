"""A job that fails on demand, for the console's browser tests.

``console.unreliable(key)`` fails for good while the Redis key ``broken:<key>`` exists (a
provider that refuses), and records its job id under ``ran:<key>`` once it succeeds.
"""

from __future__ import annotations

import os

from redis.asyncio import Redis

from omnistack_core.jobs import JobContext, job


@job("console.unreliable", max_attempts=1)
async def unreliable(ctx: JobContext, key: str, email: str) -> None:
    client = Redis.from_url(os.environ["JOBS_TRACE_URL"])
    try:
        if await client.exists(f"broken:{key}"):
            raise ValueError(f"the provider refused {key} for {email}")
        await client.rpush(f"ran:{key}", ctx.job_id)
    finally:
        await client.aclose()


JOBS = [unreliable]
