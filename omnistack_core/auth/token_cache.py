"""Principals of recently verified tokens, so a token sent on many requests is verified once.

Checking an ES256 or RS256 signature is most of the CPU an authenticated request costs, and a
client sends the same access token on every request until it expires. The principal a token
verified to is therefore kept for a short while:

* keyed by the SHA-256 digest of the token: the token itself is not kept;
* only after the token passed every check; a refused token is never remembered;
* until ``ttl`` seconds have passed or the token's ``exp`` is reached, whichever comes first,
  so a principal never outlives its token (the verifier's leeway is not granted here);
* only while the issuer's keys are those it was verified with: a fetch of the JWKS that brings
  a different key set (a rotation, a removed key) makes every entry verify again;
* at most ``max_entries`` tokens, the least recently used dropped first;
* no longer than it is reusable: each token remembered drops the expired entries at the
  least recently used end, so the cache holds about the tokens of the last ``ttl`` seconds,
  not the last ``max_entries`` seen (an entry holds every claim of its token, a few KiB).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from hashlib import sha256

from omnistack_core.auth.principal import Principal


class VerifiedTokenCache:
    """The principals of tokens verified in the last ``ttl`` seconds, bounded in size.

    Args:
        max_entries: How many tokens are remembered; 0 turns the cache off.
        ttl: Seconds a principal is reused at most; 0 turns the cache off.
        clock: Wall-clock seconds (tokens' ``exp`` are wall-clock times), for tests.
    """

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self._clock = clock
        # digest -> (principal, reusable until, keys version it was verified under)
        self._entries: OrderedDict[bytes, tuple[Principal, float, int]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        """Whether anything is ever remembered."""
        return self.max_entries > 0 and self.ttl > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, keys_version: int) -> Principal | None:
        """The principal ``token`` verified to, while still reusable, else None.

        Args:
            token: The bearer token of the request.
            keys_version: The verifier's current keys version
                (:meth:`~omnistack_core.auth.tokens.TokenVerifier.keys_version`).
        """
        if not self._entries:
            return None
        digest = _digest(token)
        entry = self._entries.get(digest)
        if entry is None:
            return None
        principal, until, version = entry
        if version != keys_version or self._clock() >= until:
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return principal

    def remember(self, token: str, principal: Principal, keys_version: int) -> None:
        """Keep the principal ``token`` was just verified to.

        Not kept when the cache is off, or when the token has no numeric ``exp``.

        Args:
            token: The token that passed verification.
            principal: What it verified to.
            keys_version: The verifier's keys version when it accepted the token.
        """
        if not self.enabled:
            return
        expires = principal.claims.get("exp")
        if isinstance(expires, bool) or not isinstance(expires, int | float):
            return
        now = self._clock()
        until = min(now + self.ttl, float(expires))
        if until <= now:
            return
        self._drop_expired(now)
        digest = _digest(token)
        self._entries[digest] = (principal, until, keys_version)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def _drop_expired(self, now: float) -> None:
        """Drop the expired entries at the least recently used end.

        An entry is reusable until at most ``ttl`` seconds after it was remembered, and was
        last used no earlier than it was remembered: every entry unused for ``ttl`` seconds
        has expired, and those sit at this end. Each entry is dropped once, so on average the
        sweep costs a request nothing.
        """
        entries = self._entries
        while entries:
            _, until, _ = next(iter(entries.values()))
            if until > now:
                return
            entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every token."""
        self._entries.clear()


def _digest(token: str) -> bytes:
    return sha256(token.encode()).digest()
