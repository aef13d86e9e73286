"""The verified-token cache: a token's principal is reused, never past its exp or its keys."""

from __future__ import annotations

import asyncio

from omnistack_core.auth import Principal
from omnistack_core.auth.token_cache import VerifiedTokenCache
from omnistack_core.testing import app_client
from omnistack_core.testing.issuer import LocalIssuer
from tests.auth.auth_apps import auth_app, bearer, supabase_settings

NOW = 1_800_000_000.0


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


async def test_the_same_token_is_verified_against_the_keys_once(
    local_issuer: LocalIssuer,
) -> None:
    token = local_issuer.supabase_token("ada")
    # Keys are used for 0.2 s, and no longer once a fetch after that fails.
    app = auth_app(
        **supabase_settings(
            local_issuer,
            auth_jwks_cache_seconds=0.2,
            auth_jwks_cooldown_seconds=0,
            auth_jwks_max_stale_seconds=0,
        )
    )

    async with app_client(app) as client:
        first = await client.get("/me", headers=bearer(token))
        # Were the token verified again, it would need keys, which can no longer be had.
        local_issuer.status = 500
        await asyncio.sleep(0.25)
        second = await client.get("/me", headers=bearer(token))

    assert (first.status_code, second.status_code) == (200, 200)


async def test_with_the_cache_off_every_request_verifies_the_token(
    local_issuer: LocalIssuer,
) -> None:
    token = local_issuer.supabase_token("ada")
    app = auth_app(
        **supabase_settings(
            local_issuer,
            auth_token_cache_seconds=0,
            auth_jwks_cache_seconds=0.2,
            auth_jwks_cooldown_seconds=0,
            auth_jwks_max_stale_seconds=0,
        )
    )

    async with app_client(app) as client:
        first = await client.get("/me", headers=bearer(token))
        local_issuer.status = 500
        await asyncio.sleep(0.25)
        second = await client.get("/me", headers=bearer(token))

    assert (first.status_code, second.status_code) == (200, 503)
