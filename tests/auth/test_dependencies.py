"""CurrentUser, OptionalUser, roles and permissions, end to end through a FastAPI app."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import select

from omnistack_core.auth import mint_dev_token, users
from omnistack_core.testing import app_client
from omnistack_core.testing.issuer import LocalIssuer
from tests.auth.auth_apps import auth_app, bearer, clerk_settings, supabase_settings


async def test_current_user_is_the_token_subject(local_issuer: LocalIssuer) -> None:
    token = local_issuer.supabase_token("4f1c-user", email="ada@example.com")

    async with app_client(auth_app(**supabase_settings(local_issuer))) as client:
        response = await client.get("/me", headers=bearer(token))

    assert response.status_code == 200
    assert response.json() == {
        "id": "4f1c-user",
        "provider": "supabase",
        "email": "ada@example.com",
    }


async def test_without_a_token_current_user_is_401_and_optional_user_is_none(
    local_issuer: LocalIssuer,
) -> None:
    async with app_client(auth_app(**supabase_settings(local_issuer))) as client:
        me = await client.get("/me")
        maybe = await client.get("/maybe")

    assert me.status_code == 401
    assert me.headers["www-authenticate"] == "Bearer"
    assert maybe.status_code == 200
    assert maybe.json() == {"id": None}


async def test_an_invalid_token_is_401_even_where_the_user_is_optional(
    local_issuer: LocalIssuer,
) -> None:
    async with app_client(auth_app(**supabase_settings(local_issuer))) as client:
        response = await client.get("/maybe", headers=bearer("not-a-token"))

    assert response.status_code == 401


async def test_the_reason_is_logged_at_debug_without_the_token(
    local_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    token = local_issuer.supabase_token(aud="somebody-else")

    async with app_client(auth_app(**supabase_settings(local_issuer))) as client:
        with caplog.at_level(logging.DEBUG, logger="omnistack.auth"):
            await client.get("/me", headers=bearer(token))

    [record] = [r for r in caplog.records if r.name == "omnistack.auth"]
    assert record.levelno == logging.DEBUG
    assert "InvalidAudienceError" in record.getMessage()
    assert token not in caplog.text


async def test_roles_and_permissions_give_403_when_missing(local_issuer: LocalIssuer) -> None:
    member = local_issuer.clerk_token(
        o={"id": "org_1", "rol": "member", "slg": "acme", "per": "read", "fpm": "1"},
        fea="o:invoices",
    )
    admin = local_issuer.clerk_token(
        o={"id": "org_1", "rol": "admin", "slg": "acme", "per": "read,manage", "fpm": "2"},
        fea="o:invoices",
    )

    async with app_client(auth_app(**clerk_settings(local_issuer))) as client:
        member_admin = await client.get("/admin", headers=bearer(member))
        member_invoices = await client.get("/invoices", headers=bearer(member))
        admin_admin = await client.get("/admin", headers=bearer(admin))
        admin_invoices = await client.get("/invoices", headers=bearer(admin))
        anonymous = await client.get("/admin")

    assert member_admin.status_code == 403
    assert member_invoices.status_code == 200
    assert admin_admin.status_code == 200
    assert admin_invoices.status_code == 403  # fpm 2 grants "manage" only
    assert admin_invoices.json()["detail"] == "Missing permissions: org:invoices:read"
    assert anonymous.status_code == 401


async def test_clerk_tokens_are_read_from_the_session_cookie_too(
    local_issuer: LocalIssuer,
) -> None:
    token = local_issuer.clerk_token("user_cookie")

    async with app_client(auth_app(**clerk_settings(local_issuer))) as client:
        client.cookies.set("__session", token)
        response = await client.get("/me")

    assert response.json()["id"] == "user_cookie"


async def test_clerk_pending_sessions_are_accepted_when_the_app_opts_in(
    local_issuer: LocalIssuer,
) -> None:
    token = local_issuer.clerk_token(sts="pending")
    app = auth_app(**clerk_settings(local_issuer, clerk_allow_pending_sessions=True))

    async with app_client(app) as client:
        response = await client.get("/me", headers=bearer(token))

    assert response.status_code == 200


async def test_clerk_works_without_fetching_when_given_the_pem_key(
    local_issuer: LocalIssuer,
) -> None:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    pem = (
        local_issuer.key("RS256")
        .private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    app = auth_app(**clerk_settings(local_issuer, clerk_jwt_key=pem.replace("\n", "\\n")))

    async with app_client(app) as client:
        response = await client.get("/me", headers=bearer(local_issuer.clerk_token()))
        ready = await client.get("/api/v1/public/health/ready")

    assert response.status_code == 200
    assert local_issuer.jwks_requests == 0
    assert "auth_jwks" not in ready.json()["checks"]


async def test_dev_tokens_work_in_development() -> None:
    app = auth_app(secret_key="s" * 40)
    token = mint_dev_token("s" * 40, "dev-user", roles=["admin"], email="dev@example.com")

    async with app_client(app) as client:
        me = await client.get("/me", headers=bearer(token))
        admin = await client.get("/admin", headers=bearer(token))
        forged = await client.get("/me", headers=bearer(mint_dev_token("x" * 40, "dev-user")))

    assert me.json() == {"id": "dev-user", "provider": "dev", "email": "dev@example.com"}
    assert admin.status_code == 200
    assert forged.status_code == 401


async def test_a_cold_cache_with_the_issuer_down_is_503_not_401() -> None:
    app = auth_app(auth_provider="supabase", supabase_project_url="http://127.0.0.1:1")
    signer = LocalIssuer()  # never started: it only signs
    claims = {"iss": "http://127.0.0.1:1/auth/v1", "aud": "authenticated", "sub": "u"}

    async with app_client(app) as client:
        response = await client.get(
            "/me", headers=bearer(signer.sign({**claims, "iat": 0, "exp": 2**31}))
        )

    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"


async def test_a_thousand_concurrent_requests_on_a_cold_cache_fetch_the_jwks_once(
    local_issuer: LocalIssuer,
) -> None:
    tokens = [local_issuer.supabase_token(f"user-{n}") for n in range(20)]
    local_issuer.delay = 0.2

    async with app_client(auth_app(**supabase_settings(local_issuer))) as client:
        responses = await asyncio.gather(
            *(client.get("/me", headers=bearer(tokens[n % 20])) for n in range(1000))
        )

    assert {response.status_code for response in responses} == {200}
    assert local_issuer.jwks_requests == 1


async def test_key_rotation_is_picked_up_with_one_refetch(local_issuer: LocalIssuer) -> None:
    app = auth_app(**supabase_settings(local_issuer, auth_jwks_cooldown_seconds=0))

    async with app_client(app) as client:
        before = await client.get("/me", headers=bearer(local_issuer.supabase_token()))
        new_key = local_issuer.rotate("ES256")
        after = await client.get("/me", headers=bearer(local_issuer.supabase_token(key=new_key)))

    assert (before.status_code, after.status_code) == (200, 200)
    assert local_issuer.jwks_requests == 2


async def test_valid_tokens_still_pass_after_the_issuer_stops(local_issuer: LocalIssuer) -> None:
    token = local_issuer.supabase_token()

    async with app_client(auth_app(**supabase_settings(local_issuer))) as client:
        first = await client.get("/me", headers=bearer(token))
        local_issuer.stop()
        second = await client.get("/me", headers=bearer(token))

    assert (first.status_code, second.status_code) == (200, 200)


async def test_readiness_reports_the_jwks_as_degraded_not_failed(
    local_issuer: LocalIssuer,
) -> None:
    app = auth_app(
        **supabase_settings(
            local_issuer,
            health_cache_seconds=0,
            auth_jwks_cache_seconds=0.001,  # every check is due for a fetch
            auth_jwks_cooldown_seconds=0,
        )
    )

    async with app_client(app) as client:
        healthy = await client.get("/api/v1/public/health/ready")
        local_issuer.status = 500
        degraded = await client.get("/api/v1/public/health/ready")

    assert healthy.json()["checks"]["auth_jwks"]["status"] == "ok"
    assert degraded.status_code == 200
    assert degraded.json()["checks"]["auth_jwks"]["status"] == "degraded"
    assert "HTTP 500" in degraded.json()["checks"]["auth_jwks"]["error"]


async def test_users_are_recorded_once_per_interval(local_issuer: LocalIssuer) -> None:
    app = auth_app(**supabase_settings(local_issuer, auth_user_sync_seconds=3600))
    token = local_issuer.supabase_token("mirror-me", email="first@example.com")
    changed = local_issuer.supabase_token("mirror-me", email="second@example.com")

    async with app_client(app) as client:
        database = app.state.database
        async with database.engine.begin() as connection:
            await connection.run_sync(users.metadata.create_all)
        await client.get("/me", headers=bearer(token))
        await client.get("/me", headers=bearer(changed))  # inside the interval: not written
        async with database.session() as session:
            rows = (await session.execute(select(users))).mappings().all()

    assert len(rows) == 1
    assert rows[0]["id"] == "mirror-me"
    assert rows[0]["provider"] == "supabase"
    assert rows[0]["email"] == "first@example.com"


async def test_a_missing_users_table_never_fails_the_request(
    local_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    async with app_client(auth_app(**supabase_settings(local_issuer))) as client:
        response = await client.get("/me", headers=bearer(local_issuer.supabase_token()))

    assert response.status_code == 200
    assert "Could not record user" in caplog.text
