"""Per-user AI budgets: tokens and calls per fixed window, enforced before each call.

A call reserves its worst case before it starts: its ``max_tokens`` plus an over-estimate of
its input (two characters a token, where real text averages about four). The reservation is
a single atomic step in Redis (a Lua script), so concurrent calls of one user can never
reserve more than the budget together. When the call ends the reservation is settled to the
tokens actually used; a failed call gives its reservation (and its call) back. Without Redis
(development) the same rules run in the process.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from omnistack_core.ai.errors import QuotaExceededError
from omnistack_core.ai.types import ImagePart, Message

_IMAGE_TOKENS = 1600  # the most a provider counts for one image at default detail

# KEYS: tokens, calls. ARGV: token limit (0: none), call limit (0: none), reserve, seconds
# left in the window (the keys' lifetime).
# Returns {1, 0} when reserved, {0, seconds until the window ends} when the budget is spent.
_RESERVE = """
local tokens = tonumber(redis.call('GET', KEYS[1]) or '0')
local calls = tonumber(redis.call('GET', KEYS[2]) or '0')
local token_limit = tonumber(ARGV[1])
local call_limit = tonumber(ARGV[2])
local reserve = tonumber(ARGV[3])
if (token_limit > 0 and tokens + reserve > token_limit)
    or (call_limit > 0 and calls + 1 > call_limit) then
  local ttl = redis.call('TTL', KEYS[1])
  if ttl < 0 then ttl = redis.call('TTL', KEYS[2]) end
  if ttl < 0 then ttl = tonumber(ARGV[4]) end
  return {0, ttl}
end
redis.call('INCRBY', KEYS[1], reserve)
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[1], ARGV[4], 'NX')
redis.call('EXPIRE', KEYS[2], ARGV[4], 'NX')
return {1, 0}
"""


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a call holds of its user's budget until it is settled."""

    user_id: str
    window: int
    tokens: int


def estimate_tokens(messages: Sequence[Message], max_tokens: int) -> int:
    """An upper bound of the tokens a call may use: its input, over-estimated, and output."""
    characters = 0
    images = 0
    for message in messages:
        for part in message.parts:
            if isinstance(part, ImagePart):
                images += 1
            else:
                characters += len(part.text)
        characters += sum(len(call.name) + len(str(call.arguments)) for call in message.tool_calls)
    return math.ceil(characters / 2) + 8 * len(messages) + images * _IMAGE_TOKENS + max_tokens


class Quota:
    """A per-user budget of tokens and calls per fixed window.

    Args:
        tokens: Tokens per window; None for no token limit.
        calls: Calls per window; None for no call limit.
        window_seconds: The window's length; windows start at multiples of it (UTC).
        redis: A ``redis.asyncio`` client; None to keep the counts in this process.
        prefix: Key prefix in Redis.
    """

    def __init__(
        self,
        *,
        tokens: int | None,
        calls: int | None,
        window_seconds: int,
        redis: Any = None,
        prefix: str = "omnistack:ai:quota",
    ) -> None:
        self.tokens = tokens
        self.calls = calls
        self.window_seconds = window_seconds
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_RESERVE) if redis is not None else None
        self._local: dict[str, int] = {}
        self._local_window = -1
        self._lock = asyncio.Lock()

    async def reserve(self, user_id: str, estimate: int) -> Reservation:
        """Hold ``estimate`` tokens and one call of the user's budget.

        Raises:
            QuotaExceededError: The budget of this window cannot cover it (429, with the
                seconds until the window ends as ``Retry-After``).
        """
        now = int(time.time())
        window = now // self.window_seconds
        remaining = (window + 1) * self.window_seconds - now
        reserve = estimate if self.tokens else 0
        token_key, call_key = self._keys(user_id, window)
        if self._script is not None:
            granted, wait = await self._script(
                keys=[token_key, call_key],
                args=[self.tokens or 0, self.calls or 0, reserve, remaining],
            )
        else:
            granted, wait = await self._reserve_locally(
                token_key, call_key, reserve, window, remaining
            )
        if not granted:
            raise QuotaExceededError(
                "Your AI budget for this period is spent.", retry_after=int(wait)
            )
        return Reservation(user_id, window, reserve)

    async def settle(self, reservation: Reservation, used: int, *, failed: bool = False) -> None:
        """Replace a reservation by the tokens used; a failed call gives back its call too."""
        token_key, call_key = self._keys(reservation.user_id, reservation.window)
        changes = {token_key: used - reservation.tokens} if reservation.tokens else {}
        if failed:
            changes[call_key] = -1
        if self._redis is not None:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, change in changes.items():
                    pipe.incrby(key, change)
                await pipe.execute()
        else:
            async with self._lock:
                for key, change in changes.items():
                    self._local[key] = self._local.get(key, 0) + change

    async def spent(self, user_id: str) -> tuple[int, int]:
        """Tokens and calls the user has used (or reserved) in the current window."""
        window = int(time.time()) // self.window_seconds
        token_key, call_key = self._keys(user_id, window)
        if self._redis is not None:
            tokens, calls = await self._redis.mget(token_key, call_key)
            return int(tokens or 0), int(calls or 0)
        return self._local.get(token_key, 0), self._local.get(call_key, 0)

    def window_ends_in(self) -> int:
        """Seconds until the current window ends and every budget starts afresh."""
        now = int(time.time())
        return (now // self.window_seconds + 1) * self.window_seconds - now

    async def reset(self, user_id: str) -> tuple[int, int]:
        """Give the user their whole budget back for the current window.

        Calls in flight settle against the fresh budget, which may then show a little less
        than zero used; the next window starts clean either way.

        Returns:
            The tokens and calls they had used (or reserved) before the reset.
        """
        window = int(time.time()) // self.window_seconds
        token_key, call_key = self._keys(user_id, window)
        before = await self.spent(user_id)
        if self._redis is not None:
            await self._redis.delete(token_key, call_key)
        else:
            async with self._lock:
                self._local.pop(token_key, None)
                self._local.pop(call_key, None)
        return before

    def _keys(self, user_id: str, window: int) -> tuple[str, str]:
        base = f"{self._prefix}:{window}:{user_id}"
        return f"{base}:tokens", f"{base}:calls"

    async def _reserve_locally(
        self, token_key: str, call_key: str, reserve: int, window: int, remaining: int
    ) -> tuple[int, int]:
        async with self._lock:
            if window != self._local_window:  # a new window: the old counts are done with
                self._local.clear()
                self._local_window = window
            tokens = self._local.get(token_key, 0)
            calls = self._local.get(call_key, 0)
            if (self.tokens and tokens + reserve > self.tokens) or (
                self.calls and calls + 1 > self.calls
            ):
                return 0, remaining
            self._local[token_key] = tokens + reserve
            self._local[call_key] = calls + 1
            return 1, 0
