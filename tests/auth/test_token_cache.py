"""The verified-token cache: a token's principal is reused, never past its exp or its keys."""

from __future__ import annotations

import secrets

from omnistack_core import Installation
from omnistack_core.auth import Authenticator, DevVerifier, Principal, TokenVerifier, mint_dev_token
from omnistack_core.auth.token_cache import VerifiedTokenCache
from omnistack_core.testing import app_client
from omnistack_core.testing.issuer import LocalIssuer
from tests.auth.auth_apps import auth_app, bearer, supabase_settings

NOW = 1_800_000_000.0
KEY = secrets.token_urlsafe(48)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def principal(subject: str = "user-1", exp: object = NOW + 3600) -> Principal:
    return Principal(id=subject, provider="supabase", claims={"sub": subject, "exp": exp})


def test_a_remembered_token_gives_its_principal_back() -> None:
    cache = VerifiedTokenCache(clock=Clock())
    ada = principal("ada")

    cache.remember("token-a", ada, keys_version=1)

    assert cache.get("token-a", keys_version=1) is ada
    assert cache.get("token-b", keys_version=1) is None


def test_a_principal_is_reused_for_at_most_the_ttl() -> None:
    clock = Clock()
    cache = VerifiedTokenCache(ttl=60, clock=clock)
    cache.remember("token", principal(), keys_version=0)

    clock.now = NOW + 59.9
    before = cache.get("token", keys_version=0)
    clock.now = NOW + 60
    after = cache.get("token", keys_version=0)

    assert before is not None
    assert after is None


def test_a_principal_never_outlives_its_token_exp() -> None:
    clock = Clock()
    cache = VerifiedTokenCache(ttl=60, clock=clock)
    cache.remember("token", principal(exp=NOW + 5), keys_version=0)

    clock.now = NOW + 4.9
    before = cache.get("token", keys_version=0)
    clock.now = NOW + 5
    after = cache.get("token", keys_version=0)

    assert before is not None
    assert after is None


def test_an_expired_token_is_not_remembered() -> None:
    cache = VerifiedTokenCache(clock=Clock())

    cache.remember("token", principal(exp=NOW - 1), keys_version=0)

    assert len(cache) == 0


def test_a_token_without_a_numeric_exp_is_not_remembered() -> None:
    cache = VerifiedTokenCache(clock=Clock())

    cache.remember("text", principal(exp=str(int(NOW + 3600))), keys_version=0)
    cache.remember("boolean", principal(exp=True), keys_version=0)

    assert len(cache) == 0


def test_a_change_of_keys_makes_every_token_verify_again() -> None:
    cache = VerifiedTokenCache(clock=Clock())
    cache.remember("token", principal(), keys_version=1)

    assert cache.get("token", keys_version=2) is None
    assert cache.get("token", keys_version=1) is None  # dropped, not kept for later


def test_the_least_recently_used_token_is_dropped_when_full() -> None:
    cache = VerifiedTokenCache(max_entries=2, clock=Clock())
    cache.remember("a", principal("a"), keys_version=0)
    cache.remember("b", principal("b"), keys_version=0)
    cache.get("a", keys_version=0)

    cache.remember("c", principal("c"), keys_version=0)

    assert len(cache) == 2
    assert cache.get("b", keys_version=0) is None
    assert cache.get("a", keys_version=0) is not None
    assert cache.get("c", keys_version=0) is not None


def test_expired_tokens_are_dropped_as_new_ones_are_remembered() -> None:
    clock = Clock()
    cache = VerifiedTokenCache(ttl=60, clock=clock)
    for number in range(100):
        cache.remember(f"old-{number}", principal(f"old-{number}"), keys_version=0)
    cache.remember("short", principal("short", exp=NOW + 20), keys_version=0)
    clock.now = NOW + 30
    cache.remember("recent", principal("recent"), keys_version=0)

    clock.now = NOW + 61
    cache.remember("new", principal("new"), keys_version=0)

    # The hundred (reusable until NOW + 60) and the token that expired at NOW + 20 are gone
    # without being looked up again; the one remembered 31 seconds ago stays.
    assert len(cache) == 2
    assert cache.get("recent", keys_version=0) is not None
    assert cache.get("new", keys_version=0) is not None


def test_a_zero_ttl_or_size_turns_the_cache_off() -> None:
    for cache in (
        VerifiedTokenCache(ttl=0, clock=Clock()),
        VerifiedTokenCache(max_entries=0, clock=Clock()),
    ):
        cache.remember("token", principal(), keys_version=0)

        assert cache.get("token", keys_version=0) is None


def test_the_token_itself_is_not_kept() -> None:
    cache = VerifiedTokenCache(clock=Clock())
    token = "eyJhbGciOiJFUzI1NiJ9.secret-payload.signature"

    cache.remember(token, principal(), keys_version=0)

    assert all(token.encode() not in key for key in cache._entries)


async def test_a_token_of_a_removed_key_is_refused_once_the_new_keys_are_fetched(
    local_issuer: LocalIssuer,
) -> None:
    old_key = local_issuer.keys[0]
    remembered = local_issuer.supabase_token("ada", key=old_key)
    app = auth_app(**supabase_settings(local_issuer, auth_jwks_cooldown_seconds=0))

    async with app_client(app) as client:
        first = await client.get("/me", headers=bearer(remembered))
        again = await client.get("/me", headers=bearer(remembered))
        new_key = local_issuer.rotate("ES256")
        local_issuer.remove(old_key.kid)
        # A token of the new key makes the app fetch the JWKS, which no longer has the old key.
        rotated = await client.get("/me", headers=bearer(local_issuer.supabase_token(key=new_key)))
        after = await client.get("/me", headers=bearer(remembered))

    assert (first.status_code, again.status_code, rotated.status_code) == (200, 200, 200)
    assert after.status_code == 401


class CountingVerifier(TokenVerifier):
    """Development tokens, verified by the real verifier, counted."""

    provider = "dev"

    def __init__(self) -> None:
        self.inner = DevVerifier(KEY, environment="test")
        self.verified = 0

    async def verify(self, token: str) -> Principal:
        self.verified += 1
        return await self.inner.verify(token)


async def statuses_and_verifications(
    tokens: list[str], **settings: object
) -> tuple[list[int], int]:
    """GET /me with each token in turn, through an app whose verifier counts."""
    app = auth_app(auth_provider="dev", secret_key=KEY, **settings)
    verifier = CountingVerifier()
    async with app_client(app) as client:
        Installation.of(app).provide("auth", Authenticator(verifier, users=None))
        statuses = [
            (await client.get("/me", headers=bearer(token))).status_code for token in tokens
        ]
    return statuses, verifier.verified


async def test_a_token_sent_again_is_not_verified_again() -> None:
    ada, bob = mint_dev_token(KEY, "ada"), mint_dev_token(KEY, "bob")

    statuses, verified = await statuses_and_verifications([ada, ada, bob, ada, bob])

    assert statuses == [200] * 5
    assert verified == 2


async def test_a_refused_token_is_checked_and_refused_every_time() -> None:
    forged = mint_dev_token("another-key-of-at-least-32-characters", "ada")

    statuses, verified = await statuses_and_verifications([forged, forged, forged])

    assert statuses == [401, 401, 401]
    assert verified == 3


async def test_with_the_cache_off_every_request_verifies_the_token() -> None:
    ada = mint_dev_token(KEY, "ada")

    statuses, verified = await statuses_and_verifications(
        [ada, ada, ada], auth_token_cache_seconds=0
    )

    assert statuses == [200, 200, 200]
    assert verified == 3
