"""An issuer's signing keys (its JWKS), cached so that load and outages stay harmless.

* Keys come only from the configured URL; a token's ``jku`` or ``x5u`` header is never
  followed, and redirects are not either.
* One fetch at a time: however many requests wait on a cold or expired cache, they share it.
* Keys are reused for ``ttl`` seconds, then fetched again; a successful fetch replaces the
  whole set, so a key the issuer removed stops verifying.
* A token with an unknown key id (the issuer rotated, or someone forged a kid) triggers a
  fetch at most once per ``cooldown``, so forged kids cannot make us hammer the issuer.
* A failed fetch never empties the cache: the last good keys keep serving for ``max_stale``
  seconds past their ``ttl``, and the failure is logged; retries wait ``cooldown``.
* ``version`` changes whenever a fetch brings a different key set, so whatever was verified
  with the old keys (the verified-token cache) can be told it must be verified again.

Fetching is asynchronous (httpx); parsing a JWKS is cheap, so nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jwt import PyJWK
from jwt.exceptions import PyJWTError

from omnistack_core.auth.errors import AuthUnavailableError, InvalidTokenError

if TYPE_CHECKING:
    # Only the client the caller passes in needs httpx: importing the cache does not.
    import httpx

logger = logging.getLogger("omnistack.auth")

ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "ES256"})
"""What Supabase's and Clerk's asymmetric keys sign with."""

MAX_JWKS_BYTES = 256 * 1024
"""A JWKS larger than this is refused: a real one holds a handful of keys."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One public key from the JWKS, ready for verification.

    Attributes:
        kid: The key id, or None when the JWKS gives none.
        algorithm: The one algorithm this key verifies.
        key: The public key object PyJWT verifies with.
    """

    kid: str | None
    algorithm: str
    key: Any


class JwksCache:
    """The signing keys published at ``url``.

    Args:
        url: The JWKS URL; the only place keys are fetched from.
        client: The HTTP client; its timeout bounds each fetch.
        algorithms: The algorithms accepted; keys for others are ignored.
        ttl: Seconds keys are used before being fetched again.
        cooldown: Least seconds between fetches caused by unknown kids or failures.
        max_stale: Seconds past ``ttl`` the last good keys serve while fetches fail.
        clock: Monotonic clock, for tests.
    """

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        algorithms: Collection[str] = ASYMMETRIC_ALGORITHMS,
        ttl: float = 600.0,
        cooldown: float = 30.0,
        max_stale: float = 21600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._client = client
        self._algorithms = frozenset(algorithms)
        self._ttl = ttl
        self._cooldown = cooldown
        self._max_stale = max_stale
        self._clock = clock
        self._keys: dict[str | None, SigningKey] = {}
        self._published: list[Any] = []  # the JWKS entries the keys came from, to spot a change
        self._version = 0
        self._fetched_at = -math.inf  # last successful fetch
        self._attempted_at = -math.inf  # last fetch, successful or not
        self._last_error: str | None = None
        self._fetching: asyncio.Future[None] | None = None

    async def key(self, kid: str | None) -> SigningKey:
        """The key a token with key id ``kid`` must be verified with.

        Raises:
            InvalidTokenError: No key has that id, even after the fetch an unknown id allows.
            AuthUnavailableError: No usable keys: the JWKS cannot be fetched and the cached
                keys (if any) are older than ``ttl + max_stale``.
        """
        now = self._clock()
        if now - self._fetched_at >= self._ttl and self._may_fetch(now):
            await self._fetch()
        key = self._keys.get(kid)
        if key is None and self._may_fetch(self._clock()):
            # The issuer may have rotated its keys since our last fetch.
            await self._fetch()
            key = self._keys.get(kid)
        if not self._usable():
            raise AuthUnavailableError(f"no signing keys from {self.url}: {self._last_error}")
        if key is None:
            raise InvalidTokenError(f"unknown key id {kid!r}")
        return key

    @property
    def version(self) -> int:
        """A number that changes each time a fetch brings a different set of keys."""
        return self._version

    async def check(self) -> None:
        """Readiness: fetch when the keys are due, and fail when the last fetch failed.

        Raises:
            AuthUnavailableError: The JWKS URL did not answer with keys the last time.
        """
        now = self._clock()
        if now - self._fetched_at >= self._ttl and self._may_fetch(now):
            await self._fetch()
        if self._last_error is not None:
            state = "serving cached keys" if self._usable() else "no keys"
            raise AuthUnavailableError(f"{self.url}: {self._last_error} ({state})")

    def prefetch(self) -> None:
        """Start fetching the keys in the background, at start-up.

        Neither the first request nor the first readiness probe then waits for the whole
        fetch; they share it if it is still running. A failure is logged as any fetch's, and
        does not stop the start: the readiness check reports it.
        """
        if self._fetching is None:
            self._start_fetch()

    def stop(self) -> None:
        """Cancel a fetch still running (the app stops, and its HTTP client closes)."""
        if self._fetching is not None:
            self._fetching.cancel()
            self._fetching = None

    def _may_fetch(self, now: float) -> bool:
        return self._fetching is not None or now - self._attempted_at >= self._cooldown

    def _usable(self) -> bool:
        return self._clock() - self._fetched_at < self._ttl + self._max_stale

    async def _fetch(self) -> None:
        fetching = self._fetching if self._fetching is not None else self._start_fetch()
        # Shielded: a request that gives up must not cancel the fetch others wait for.
        await asyncio.shield(fetching)

    def _start_fetch(self) -> asyncio.Future[None]:
        self._attempted_at = self._clock()
        fetching = self._fetching = asyncio.ensure_future(self._fetch_and_store())
        fetching.add_done_callback(self._fetched)
        return fetching

    def _fetched(self, fetching: asyncio.Future[None]) -> None:
        self._fetching = None
        if not fetching.cancelled():
            fetching.exception()  # retrieved, so asyncio does not warn; already handled

    async def _fetch_and_store(self) -> None:
        import httpx  # noqa: PLC0415 - loaded already: the client is an httpx client

        try:
            keys, published = await self._download()
        except (httpx.HTTPError, ValueError) as exc:
            self._last_error = f"{type(exc).__name__}: {exc}"[:300]
            logger.warning(
                "Could not fetch signing keys from %s: %s (%d cached keys kept)",
                self.url,
                self._last_error,
                len(self._keys),
            )
            return
        if published != self._published:
            self._version += 1
            self._published = published
        self._keys = keys
        self._fetched_at = self._clock()
        self._last_error = None

    async def _download(self) -> tuple[dict[str | None, SigningKey], list[Any]]:
        response = await self._client.get(self.url, follow_redirects=False)
        if response.status_code != 200:
            raise ValueError(f"HTTP {response.status_code}")
        if len(response.content) > MAX_JWKS_BYTES:
            raise ValueError(f"JWKS larger than {MAX_JWKS_BYTES} bytes")
        document = response.json()
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise ValueError("not a JWKS: no 'keys' list")  # noqa: TRY004 - reported as a fetch failure
        keys: dict[str | None, SigningKey] = {}
        published: list[Any] = []
        for entry in entries:
            key = self._signing_key(entry)
            if key is not None:
                keys[key.kid] = key
                published.append(entry)
        return keys, published

    def _signing_key(self, entry: object) -> SigningKey | None:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            return None
        try:
            jwk = PyJWK(entry)
        except PyJWTError as exc:
            logger.info("Ignoring a key of %s that cannot be used: %s", self.url, exc)
            return None
        if jwk.algorithm_name not in self._algorithms:
            return None
        kid = entry.get("kid")
        return SigningKey(kid if isinstance(kid, str) else None, jwk.algorithm_name, jwk.key)
