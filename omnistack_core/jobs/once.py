"""Make a side effect happen once, although jobs run at least once.

A worker killed mid-job (a deploy, an out-of-memory kill) means the job runs again from the
start. Wrap each side effect that must not repeat (a charge, an email without a provider-side
idempotency key, a webhook call) in :func:`once`::

    async with once(redis, f"invoice-sent:{invoice_id}", ttl=86400) as first:
        if first:
            await send_invoice(invoice_id)

The key is claimed before the block runs and marked done after it succeeds. If the block
raises, the claim is released so the retry can do the work. If the process dies inside the
block, the claim expires after ``claim_ttl`` and a later attempt does the work: a side effect
cut off half-way may then happen twice, which only an idempotency key at the other end
(Resend's, Stripe's) can rule out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis

_CLAIMED = b"claimed"
_DONE = b"done"


@asynccontextmanager
async def once(
    redis: Redis, key: str, *, ttl: float, claim_ttl: float = 300.0
) -> AsyncIterator[bool]:
    """Yield True to the first attempt to reach ``key``, False once it has succeeded.

    Args:
        redis: The service's Redis (``app.state.redis``).
        key: Names the side effect, e.g. ``f"welcome-email:{user_id}"``.
        ttl: Seconds the key remembers the side effect was done.
        claim_ttl: Seconds a claim holds while the block runs (longer than the block takes).

    Yields:
        Whether this attempt should do the work.
    """
    name = f"omnistack:once:{key}"
    claimed = await redis.set(name, _CLAIMED, nx=True, px=int(claim_ttl * 1000))
    if not claimed:
        yield False
        return
    try:
        yield True
    except BaseException:
        await redis.delete(name)
        raise
    await redis.set(name, _DONE, px=int(ttl * 1000))
