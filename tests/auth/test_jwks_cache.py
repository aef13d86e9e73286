"""The JWKS cache against a real HTTP issuer: load, rotation, outages."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from omnistack_core.auth import AuthUnavailableError, InvalidTokenError, JwksCache
from omnistack_core.testing.issuer import CLERK_JWKS_PATH, IssuerKey, LocalIssuer


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield http


def cache_for(
    issuer: LocalIssuer, client: httpx.AsyncClient, clock: Clock | None = None, **options: float
) -> JwksCache:
    return JwksCache(issuer.url + CLERK_JWKS_PATH, client, clock=clock or Clock(), **options)


async def test_a_cold_cache_under_a_thousand_requests_fetches_once(
    local_issuer: LocalIssuer, client: httpx.AsyncClient
) -> None:
    local_issuer.delay = 0.2  # keep the first fetch in flight while the others arrive
    cache = cache_for(local_issuer, client)
    kid = local_issuer.keys[0].kid

    keys = await asyncio.gather(*(cache.key(kid) for _ in range(1000)))

    assert {key.kid for key in keys} == {kid}
    assert local_issuer.jwks_requests == 1


async def test_random_unknown_kids_refetch_at_most_once_per_cooldown(
    local_issuer: LocalIssuer, client: httpx.AsyncClient
) -> None:
    clock = Clock()
    cache = cache_for(local_issuer, client, clock, cooldown=30)
    await cache.key(local_issuer.keys[0].kid)
    assert local_issuer.jwks_requests == 1

    async def forged() -> None:
        with pytest.raises(InvalidTokenError, match="unknown key id"):
            await cache.key(uuid.uuid4().hex)

    clock.now += 31
    await asyncio.gather(*(forged() for _ in range(1000)))
    assert local_issuer.jwks_requests == 2  # one refetch for the whole burst
    clock.now += 10
    await asyncio.gather(*(forged() for _ in range(1000)))
    assert local_issuer.jwks_requests == 2  # still inside the cool-down
    clock.now += 21
    await forged()
    assert local_issuer.jwks_requests == 3


async def test_a_rotated_key_is_found_with_a_single_refetch(
    local_issuer: LocalIssuer, client: httpx.AsyncClient
) -> None:
    clock = Clock()
    cache = cache_for(local_issuer, client, clock)
    await cache.key(local_issuer.keys[0].kid)
    new_key = local_issuer.rotate("ES256")
    clock.now += 60  # past the cool-down, well inside the TTL

    found = await cache.key(new_key.kid)

    assert (found.kid, found.algorithm) == (new_key.kid, "ES256")
    assert local_issuer.jwks_requests == 2


async def test_keys_keep_serving_when_the_issuer_goes_away(
    local_issuer: LocalIssuer, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    cache = cache_for(local_issuer, client, clock, ttl=600, max_stale=3600)
    kid = local_issuer.keys[0].kid
    await cache.key(kid)
    local_issuer.stop()

    clock.now += 300  # inside the TTL: no fetch at all
    assert (await cache.key(kid)).kid == kid
    clock.now += 600  # past the TTL: the fetch fails, the last good keys serve
    with caplog.at_level(logging.WARNING, logger="omnistack.auth"):
        assert (await cache.key(kid)).kid == kid
    assert "Could not fetch signing keys" in caplog.text
    assert "1 cached keys kept" in caplog.text or "2 cached keys kept" in caplog.text


async def test_stale_keys_stop_serving_after_the_bound(
    local_issuer: LocalIssuer, client: httpx.AsyncClient
) -> None:
    clock = Clock()
    cache = cache_for(local_issuer, client, clock, ttl=600, max_stale=3600)
    kid = local_issuer.keys[0].kid
    await cache.key(kid)
    local_issuer.stop()

    clock.now += 600 + 3600 + 1
    with pytest.raises(AuthUnavailableError, match="no signing keys"):
        await cache.key(kid)


async def test_a_failed_refresh_never_empties_the_cache_and_is_retried_after_cooldown(
    local_issuer: LocalIssuer, client: httpx.AsyncClient
) -> None:
    clock = Clock()
    cache = cache_for(local_issuer, client, clock, ttl=600, cooldown=30)
    kid = local_issuer.keys[0].kid
    await cache.key(kid)
    local_issuer.status = 500
    clock.now += 601

    assert (await cache.key(kid)).kid == kid
    requests_after_failure = local_issuer.jwks_requests
    assert (await cache.key(kid)).kid == kid  # no retry inside the cool-down
    assert local_issuer.jwks_requests == requests_after_failure
    local_issuer.status = 200
    clock.now += 31
    assert (await cache.key(kid)).kid == kid
    assert local_issuer.jwks_requests == requests_after_failure + 1


async def test_a_removed_key_stops_verifying_after_the_next_refresh(
    local_issuer: LocalIssuer, client: httpx.AsyncClient
) -> None:
    clock = Clock()
    cache = cache_for(local_issuer, client, clock, ttl=600)
    old = local_issuer.keys[0]
    await cache.key(old.kid)
    local_issuer.rotate()
    local_issuer.remove(old.kid)

    assert (await cache.key(old.kid)).kid == old.kid  # until the refresh, still trusted
    clock.now += 601
    with pytest.raises(InvalidTokenError, match="unknown key id"):
        await cache.key(old.kid)


async def test_the_version_changes_only_when_a_fetch_brings_other_keys(
    local_issuer: LocalIssuer, client: httpx.AsyncClient
) -> None:
    clock = Clock()
    cache = cache_for(local_issuer, client, clock, ttl=600, cooldown=0)
    await cache.key(local_issuer.keys[0].kid)
    first = cache.version

    clock.now += 600  # due: fetched again, same keys
    await cache.key(local_issuer.keys[0].kid)
    same = cache.version
    new_key = local_issuer.rotate("ES256")
    await cache.key(new_key.kid)  # unknown: fetched again, a new key
    rotated = cache.version
    local_issuer.status = 500
    clock.now += 600  # due, and the fetch fails: the cached keys are kept
    await cache.key(new_key.kid)

    assert same == first
    assert rotated != first
    assert cache.version == rotated


async def test_a_cold_cache_with_the_issuer_down_is_unavailable(
    client: httpx.AsyncClient,
) -> None:
    cache = JwksCache("http://127.0.0.1:1/.well-known/jwks.json", client, clock=Clock())

    with pytest.raises(AuthUnavailableError, match="ConnectError"):
        await cache.key("any")
    with pytest.raises(AuthUnavailableError):
        await cache.check()


async def test_check_reports_a_failing_jwks_url(
    local_issuer: LocalIssuer, client: httpx.AsyncClient
) -> None:
    clock = Clock()
    cache = cache_for(local_issuer, client, clock, ttl=600)
    await cache.check()
    local_issuer.status = 503
    clock.now += 601

    with pytest.raises(AuthUnavailableError, match=r"HTTP 503 \(serving cached keys\)"):
        await cache.check()


class StaticServer:
    """Serves one fixed response on 127.0.0.1, counting requests."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


async def test_redirects_are_not_followed(
    local_issuer: LocalIssuer, client: httpx.AsyncClient
) -> None:
    redirect = StaticServer(302, b"", {"Location": local_issuer.url + CLERK_JWKS_PATH})
    try:
        cache = JwksCache(redirect.url, client, clock=Clock())
        with pytest.raises(AuthUnavailableError, match="HTTP 302"):
            await cache.key(local_issuer.keys[0].kid)
    finally:
        redirect.close()
    assert local_issuer.jwks_requests == 0


async def test_an_oversized_jwks_is_refused(client: httpx.AsyncClient) -> None:
    huge = json.dumps({"keys": [], "padding": "x" * 300_000}).encode()
    server = StaticServer(200, huge, {"Content-Type": "application/json"})
    try:
        cache = JwksCache(server.url, client, clock=Clock())
        with pytest.raises(AuthUnavailableError, match="larger than"):
            await cache.key("any")
    finally:
        server.close()


async def test_keys_not_for_signing_or_for_other_algorithms_are_ignored(
    client: httpx.AsyncClient,
) -> None:
    rsa_key = IssuerKey.generate("RS256", kid="rsa")
    encryption = {**IssuerKey.generate("RS256", kid="enc").jwk(), "use": "enc"}
    hmac = {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0", "alg": "HS256"}
    document = {"keys": [rsa_key.jwk(), encryption, hmac, {"kty": "nonsense", "kid": "bad"}]}
    server = StaticServer(200, json.dumps(document).encode())
    try:
        cache = JwksCache(server.url, client, clock=Clock(), cooldown=1000)
        assert (await cache.key("rsa")).algorithm == "RS256"
        for kid in ("enc", "hmac", "bad"):
            with pytest.raises(InvalidTokenError):
                await cache.key(kid)
    finally:
        server.close()


async def test_a_prefetch_is_shared_with_the_first_request(
    local_issuer: LocalIssuer, client: httpx.AsyncClient
) -> None:
    local_issuer.delay = 0.2  # still in flight when the request arrives
    cache = cache_for(local_issuer, client)

    cache.prefetch()
    key = await cache.key(local_issuer.keys[0].kid)
    await cache.check()

    assert key.kid == local_issuer.keys[0].kid
    assert local_issuer.jwks_requests == 1


async def test_a_prefetch_with_the_issuer_down_raises_nothing_and_check_reports_it(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    cache = JwksCache("http://127.0.0.1:1/.well-known/jwks.json", client, clock=Clock())

    with caplog.at_level(logging.WARNING, logger="omnistack.auth"):
        cache.prefetch()
        await asyncio.sleep(0.5)

    assert "Could not fetch signing keys" in caplog.text
    with pytest.raises(AuthUnavailableError, match="ConnectError"):
        await cache.check()


async def test_stop_cancels_a_prefetch_still_running(
    local_issuer: LocalIssuer, client: httpx.AsyncClient
) -> None:
    local_issuer.delay = 5
    cache = cache_for(local_issuer, client)

    cache.prefetch()
    await asyncio.sleep(0.05)
    cache.stop()
    await asyncio.sleep(0)

    with pytest.raises(AuthUnavailableError, match="no signing keys"):
        await cache.key(local_issuer.keys[0].kid)  # the cooldown holds the next fetch back
